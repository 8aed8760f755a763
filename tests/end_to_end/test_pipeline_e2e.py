"""One real run of every component on synthetic data, then the pushed model's contract."""

import dataclasses
import glob
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components import features as F
from components.example_gen.executor import to_example
from components.serving.export import SCORE_BLOCK_USERS, SIGNATURES
from data import raw_format as R
from pipeline import cli
from pipeline.serving import Recommender, latest_model_dir

ARTIFACT_TYPES = ("Examples", "ExampleStatistics", "Schema", "ExampleAnomalies",
                  "TransformGraph", "Model", "ModelEvaluation", "ModelBlessing", "PushedModel")


def _store(output):
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = os.path.join(output, "metadata.sqlite")
    return metadata_store.MetadataStore(connection)


def _raw_examples(store):
    """ExampleGen's output (Transform's transformed examples share the Examples type)."""
    [examples] = [a for a in store.get_artifacts_by_type("Examples")
                  if f"{os.sep}FileBasedExampleGen{os.sep}" in a.uri]
    return examples


@pytest.fixture(scope="module")
def recommender(run):
    return Recommender(latest_model_dir(os.path.join(run, "serving")))


def _split_records(run, split):
    """The serialized examples of one split ExampleGen wrote."""
    files = glob.glob(os.path.join(_raw_examples(_store(run)).uri, f"Split-{split}", "*.gz"))
    return [record.numpy() for record in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _split_pairs(run, split):
    """(user_id, item_id, rating) of one split ExampleGen wrote."""
    pairs = []
    for record in _split_records(run, split):
        feature = tf.train.Example.FromString(record).features.feature
        pairs.append((feature[F.USER_ID].bytes_list.value[0].decode(),
                      feature[F.ITEM_ID].bytes_list.value[0].decode(),
                      feature[F.RATING].float_list.value[0]))
    return pairs


@pytest.fixture(scope="module")
def train_pairs(run):
    return _split_pairs(run, "train")


@pytest.fixture(scope="module")
def eval_pairs(run):
    return _split_pairs(run, "eval")


@pytest.fixture(scope="module")
def rated_pairs(train_pairs, eval_pairs):
    """Every rating the run was given: what the pushed model learned from and excludes."""
    return train_pairs + eval_pairs


def test_every_component_produced_its_artifacts(run):
    store = _store(run)
    for type_name in ARTIFACT_TYPES:
        artifacts = store.get_artifacts_by_type(type_name)
        assert artifacts, f"no {type_name} artifact"
        assert all(os.path.exists(a.uri) for a in artifacts), type_name
    examples = _raw_examples(store)
    # The splits, and the whole item table beside them (example_gen/item_catalog.py).
    assert sorted(os.listdir(examples.uri)) == ["Split-eval", "Split-train", "items"]


def test_beam_components_did_not_package_tfx(run):
    """Without a dependency option TFX copies its whole install into a temporary sdist for
    each Beam component (49 MB and ~4.5 s each, never deleted); the project names its own."""
    leftovers = glob.glob(os.path.join(os.path.dirname(run), "tmp", "*", "build", "tfx"))
    assert leftovers == []


def test_the_trainer_records_its_examples_and_epoch_times(run, train_pairs):
    """What `make bench` turns into training throughput."""
    [model_run] = _store(run).get_artifacts_by_type("ModelRun")
    with open(os.path.join(model_run.uri, "training.json")) as handle:
        training = json.load(handle)
    assert training["examples"] == len(train_pairs)
    # E2E_CONFIG's epochs and the default autoencoder's: the budgets do not bind here.
    assert training["epochs"] == 8 and training["autoencoder_epochs"] == 50
    assert len(training["epoch_seconds"]) == 8
    assert all(seconds > 0 for seconds in training["epoch_seconds"])
    starts = training["epoch_starts"]
    assert starts == sorted(starts) and len(starts) == 8 and starts[0] >= 0
    assert training["blended_models_seconds"] > 0  # the autoencoder and EASE, beside the towers
    assert list(training["phase_seconds"]) == [
        "read", "catalog", "load_previous", "item_item", "fit", "export",
        "refit_item_item", "refit_fit", "refit_export"]
    assert training["phase_seconds"]["fit"] > training["setup_seconds"] + starts[-1]
    assert starts[-1] < training["train_end_seconds"] <= training["towers_seconds"]


def test_the_benchmark_trains_the_towers_alone_on_the_runs_data(
        run, train_pairs, synthetic_folder, e2e_config_file):
    """make bench's towers-alone throughput: the Trainer's run_fn again on this run's data,
    nothing fitting beside the towers."""
    from bench.pipeline_bench import towers_alone
    from pipeline.config import load_config

    training = towers_alone(load_config(e2e_config_file, data_dir=synthetic_folder,
                                        output_dir=run))
    assert training["examples"] == len(train_pairs)
    assert len(training["epoch_seconds"]) == 8
    # Nothing to fit beside: the blended models were done before the first epoch ended.
    assert training["blended_models_seconds"] < training["epoch_seconds"][0]
    assert training["steady_examples_per_second"] > 0


def test_a_run_larger_than_its_example_budget_trains_fewer_epochs(
        run, train_pairs, synthetic_folder, e2e_config_file):
    """The budget as the Trainer applies it: 3 epochs of this run's examples fit, 4 do not."""
    from bench.pipeline_bench import towers_alone
    from pipeline.config import load_config

    config = load_config(e2e_config_file, data_dir=synthetic_folder, output_dir=run)
    training = towers_alone(dataclasses.replace(config, training=dataclasses.replace(
        config.training, example_budget=4 * len(train_pairs) - 1)))
    assert training["epochs"] == 3 and len(training["epoch_seconds"]) == 3


def test_the_pushed_model_learned_from_both_splits_and_the_gate_scored_the_train_splits(
        run, train_pairs, eval_pairs):
    """The gate scores a model that never saw the eval split (Format-TFMA, as the model in
    service's was scored); the Pusher serves its refit on both splits (Format-Serving)."""
    import tensorflow_model_analysis as tfma

    store = _store(run)
    [model_run] = store.get_artifacts_by_type("ModelRun")
    with open(os.path.join(model_run.uri, "training.json")) as handle:
        training = json.load(handle)
    assert training["examples"] == len(train_pairs)
    refit = training["refit"]
    assert refit["examples"] == len(train_pairs) + len(eval_pairs)
    assert refit["epochs"] == 2  # warm-started from the gate's model: warm_start_epochs
    [model] = store.get_artifacts_by_type("Model")
    gate = Recommender(os.path.join(model.uri, "Format-TFMA"))
    served = Recommender(os.path.join(model.uri, "Format-Serving"))
    [pushed] = store.get_artifacts_by_type("PushedModel")
    pushed_model = tf.saved_model.load(pushed.custom_properties["pushed_destination"].string_value)
    assert pushed_model.seen_items.shape[0] == len({(u, i) for u, i, _ in train_pairs + eval_pairs})
    assert gate._model.seen_items.shape[0] == len({(u, i) for u, i, _ in train_pairs})

    records = _split_records(run, "eval")
    truth = np.array([rating for _, _, rating in eval_pairs])

    def eval_rmse(recommender):
        errors = np.array(recommender.predict_ratings(records)) - truth
        return float(np.sqrt(np.mean(errors ** 2)))

    evaluation = store.get_artifacts_by_type("ModelEvaluation")[0]
    overall = dict(tfma.load_eval_result(evaluation.uri).slicing_metrics)[()][""][""]
    assert overall["root_mean_squared_error"]["doubleValue"] == pytest.approx(
        eval_rmse(gate), rel=1e-3)
    assert eval_rmse(served) < eval_rmse(gate) - 0.02  # it learned the eval split's ratings


def test_recommend_excludes_every_item_the_user_rated_in_either_split(
        recommender, rated_pairs, eval_pairs):
    rated = {}
    for user, item, _ in rated_pairs:
        rated.setdefault(user, set()).add(item)
    users = sorted({user for user, _, _ in eval_pairs})[:40]
    catalog = recommender._model.item_ids.shape[0]
    for user, rows in zip(users, recommender.recommend(users, k=catalog)):
        unseen = {item for item, score in rows if score > -np.inf}
        assert not unseen & rated[user], user
        assert len(unseen) == catalog - len(rated[user])


def test_the_model_was_blessed_and_pushed(run):
    store = _store(run)
    blessings = store.get_artifacts_by_type("ModelBlessing")
    producers = sorted(a.uri.split(os.sep)[-3] for a in blessings)
    assert producers == ["Evaluator", "ReleaseGate"]  # rating gate, then ranking gate
    assert all(b.custom_properties["blessed"].int_value == 1 for b in blessings)
    [gate] = [b for b in blessings if f"{os.sep}ReleaseGate{os.sep}" in b.uri]
    [model] = store.get_artifacts_by_type("Model")
    assert gate.custom_properties["current_model_id"].int_value == model.id
    [pushed] = store.get_artifacts_by_type("PushedModel")
    assert pushed.custom_properties["pushed"].int_value == 1
    versions = os.listdir(os.path.join(run, "serving"))
    assert len(versions) == 1 and versions[0].isdigit()
    assert pushed.custom_properties["pushed_destination"].string_value == os.path.join(
        run, "serving", versions[0])


def test_the_model_beats_the_global_mean_baseline(run, train_pairs):
    import tensorflow_model_analysis as tfma

    store = _store(run)
    evaluation = store.get_artifacts_by_type("ModelEvaluation")[0]
    overall = dict(tfma.load_eval_result(evaluation.uri).slicing_metrics)[()][""][""]
    model_rmse = overall["root_mean_squared_error"]["doubleValue"]
    examples = _raw_examples(store)
    files = glob.glob(os.path.join(examples.uri, "Split-eval", "*.gz"))
    eval_ratings = np.array([
        tf.train.Example.FromString(r.numpy()).features.feature[F.RATING].float_list.value[0]
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")])
    global_mean = np.mean([rating for _, _, rating in train_pairs])
    baseline_rmse = float(np.sqrt(np.mean((eval_ratings - global_mean) ** 2)))
    assert overall["example_count"]["doubleValue"] == len(eval_ratings)
    assert model_rmse < 0.95 * baseline_rmse, (model_rmse, baseline_rmse)


def test_pushed_model_exports_the_whole_contract(recommender):
    assert set(recommender._model.signatures) == set(SIGNATURES)


def _rating_examples(synthetic_folder, count):
    """The first count ratings and their serving_default examples (protos, raw columns)."""
    users = {u.user_id: u for u in R.read_table(synthetic_folder, R.USERS_FILE)}
    items = {i.item_id: i for i in R.read_table(synthetic_folder, R.ITEMS_FILE)}
    ratings = R.read_table(synthetic_folder, R.RATINGS_FILE)[:count]
    return ratings, [to_example(r, users[r.user_id], items[r.item_id], 1) for r in ratings]


@pytest.fixture(scope="module")
def title_words_model(synthetic_folder, tmp_path_factory):
    """A pushed model trained with title words in the item tower (training.title_words)."""
    from tests.conftest import E2E_CONFIG

    config = tmp_path_factory.mktemp("title_words") / "config.yaml"
    config.write_text(E2E_CONFIG.replace("training:\n", "training:\n  title_words: true\n"))
    output = str(config.parent / "output")
    assert cli.main(["run", "--data", synthetic_folder, "--output", output,
                     "--config", str(config)]) == 0
    return Recommender(latest_model_dir(os.path.join(output, "serving")))


@pytest.mark.parametrize("model", ["recommender", "title_words_model"])
def test_serving_default_rates_raw_examples_in_range(model, request, synthetic_folder):
    ratings, examples = _rating_examples(synthetic_folder, 50)
    predicted = np.array(request.getfixturevalue(model).predict_ratings(
        [example.SerializeToString() for example in examples]))
    assert predicted.shape == (50,)
    assert np.all((predicted >= 1.0) & (predicted <= 5.0))
    truth = np.array([r.rating for r in ratings])
    assert np.corrcoef(predicted, truth)[0, 1] > 0.3  # it rates, not just a constant


def _title_variants(synthetic_folder):
    """serving_default's examples of 20 ratings: with their titles, with an empty title, with
    none."""
    variants = {"with": [], "empty": [], "none": []}
    for example in _rating_examples(synthetic_folder, 20)[1]:
        variants["with"].append(example.SerializeToString())
        example.features.feature[F.TITLE].bytes_list.value[:] = [b""]
        variants["empty"].append(example.SerializeToString())
        del example.features.feature[F.TITLE]
        variants["none"].append(example.SerializeToString())
    return variants


@pytest.mark.parametrize("title_words", [False, True])
def test_serving_default_takes_a_missing_title_as_no_title_words(
        title_words, recommender, title_words_model, synthetic_folder):
    """An example without a title is rated as an item whose title has no words (as a missing
    year or genres is); with title_words the title moves the rating, without it it does not."""
    model = title_words_model if title_words else recommender
    rated = {name: np.array(model.predict_ratings(examples))
             for name, examples in _title_variants(synthetic_folder).items()}
    np.testing.assert_allclose(rated["none"], rated["empty"], rtol=1e-6)
    assert (np.abs(rated["with"] - rated["none"]).max() > 1e-4) == title_words


def test_title_words_model_serves_new_movies(title_words_model):
    from tests.conftest import COLD_ITEMS

    [rows] = title_words_model.recommend(["1"], k=2000)
    assert {item[0] for item in COLD_ITEMS} <= {item for item, _ in rows}


def test_recommend_known_user_excludes_rated_items(recommender, rated_pairs):
    seen = {}
    for user, item, _ in rated_pairs:
        seen.setdefault(user, set()).add(item)
    user = max(seen, key=lambda u: len(seen[u]))
    [rows] = recommender.recommend([user], k=10)
    items = [item for item, _ in rows]
    scores = [score for _, score in rows]
    assert len(items) == 10 == len(set(items))
    assert not set(items) & seen[user]
    assert scores == sorted(scores, reverse=True)


def test_recommend_adds_the_item_item_rows_of_a_known_users_rated_items(
        recommender, rated_pairs):
    """The hybrid's score: towers (item side scaled by their share) + Σ item_item[rated, ·]."""
    model = tf.saved_model.load(recommender.model_dir)
    item_index = {i.decode(): n for n, i in enumerate(model.item_ids.numpy())}
    splits, seen = model.seen_splits.numpy(), model.seen_items.numpy()
    user, _, _ = rated_pairs[0]
    rated = sorted(item_index[i] for u, i, _ in rated_pairs if u == user)
    [index] = [u for u in range(len(splits) - 1) if sorted(seen[splits[u]:splits[u + 1]]) == rated]
    item_item = model.item_item.numpy()
    towers = (model.rank_item_vectors.numpy() @ model.rank_user_vectors.numpy()[index]
              + model.item_rank_biases.numpy())
    # The item-item rows cover the rated items; the movies no rating names come after them.
    history = np.pad(item_item[rated].sum(axis=0), (0, len(towers) - len(item_item)))
    [rows] = recommender.recommend([user], k=10)
    top = [item_index[i] for i, _ in rows]
    np.testing.assert_allclose([s for _, s in rows], (towers + history)[top], rtol=1e-4,
                               atol=1e-5)
    assert np.abs(history[top]).max() > 1e-3  # the item-item term is really there


def test_recommend_honours_k_and_batches(recommender, train_pairs):
    users = sorted({user for user, _, _ in train_pairs})[:3]
    for k in (1, 5, 25):
        result = recommender.recommend(users + ["no-such-user"], k=k)
        assert [len(rows) for rows in result] == [k] * 4


def test_recommend_scores_a_batch_as_it_scores_each_user_alone(
        recommender, train_pairs, ranks_each_user_as_alone):
    users = sorted({user for user, _, _ in train_pairs})[:2 * SCORE_BLOCK_USERS + 2]
    ranks_each_user_as_alone(recommender, users[:3] + ["no-such-user"] + users[3:])


def test_recommend_with_features_scores_a_batch_as_it_scores_each_user_alone(
        recommender, train_pairs, ranks_each_user_as_alone):
    users = sorted({user for user, _, _ in train_pairs})[:2 * SCORE_BLOCK_USERS + 2]
    batch = users[:3] + ["newcomer"] + users[3:]
    rng = np.random.default_rng(0)
    features = {F.AGE: [int(age) for age in rng.integers(18, 70, len(batch))],
                F.GENDER: list(rng.choice(["F", "M"], len(batch))),
                F.OCCUPATION: list(rng.choice(["student", "writer", "retired"], len(batch))),
                F.ZIP_CODE: ["55455"] * len(batch)}
    ranks_each_user_as_alone(recommender, batch, features)


def test_recommend_answers_an_empty_batch_and_a_k_beyond_the_catalog(recommender, rated_pairs):
    empty = recommender.signature("recommend")(user_id=tf.constant([], tf.string),
                                               k=tf.constant(10))
    assert empty["item_ids"].shape == empty["scores"].shape == (0, 0)
    no_features = {F.AGE: [], F.GENDER: [], F.OCCUPATION: [], F.ZIP_CODE: []}
    assert recommender.recommend([]) == recommender.recommend([], 10, no_features) == []
    assert recommender.similar_items([]) == []
    catalog = recommender._model.item_ids.shape[0]
    user = rated_pairs[0][0]
    seen = {i for u, i, _ in rated_pairs if u == user}
    [rows] = recommender.recommend([user], k=10 * catalog)
    # Only unseen items: k is capped at what the user has not rated.
    unseen = [item for item, score in rows if score > -np.inf]
    assert len(rows) == len(unseen) == len(set(unseen)) == catalog - len(seen)
    assert not set(unseen) & seen


def test_recommend_unknown_user_without_features_falls_back_to_popularity(
        recommender, rated_pairs):
    counts = {}
    for _, item, _ in rated_pairs:
        counts[item] = counts.get(item, 0) + 1
    [rows] = recommender.recommend(["no-such-user"], k=5)
    top = sorted(counts.values(), reverse=True)[:5]
    assert [counts[item] for item, _ in rows] == top


def test_recommend_unknown_user_with_features_uses_the_demographics(recommender):
    def top(age, gender, occupation):
        features = {F.AGE: [age], F.GENDER: [gender], F.OCCUPATION: [occupation],
                    F.ZIP_CODE: ["55455"]}
        return [item for item, _ in recommender.recommend(["newcomer"], 10, features)[0]]

    student, retiree = top(19, "F", "student"), top(68, "M", "retired")
    assert len(student) == len(retiree) == 10
    assert student != retiree  # demographics change the ranking


def test_recommend_with_features_still_excludes_a_known_users_items(recommender, rated_pairs):
    user, item, _ = rated_pairs[0]
    seen = {i for u, i, _ in rated_pairs if u == user}
    features = {F.AGE: [30], F.GENDER: ["F"], F.OCCUPATION: ["writer"], F.ZIP_CODE: ["12345"]}
    [rows] = recommender.recommend([user], 50, features)
    assert not {i for i, _ in rows} & seen


def test_similar_items_excludes_the_item_and_ranks_by_cosine(recommender, train_pairs):
    item = train_pairs[0][1]
    [rows] = recommender.similar_items([item], k=5)
    assert item not in [i for i, _ in rows] and len(rows) == 5
    scores = [s for _, s in rows]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 + 1e-6 for s in scores)


def test_a_worse_candidate_is_not_pushed(run, synthetic_folder, tmp_path, capsys):
    config = tmp_path / "worse.yaml"
    config.write_text("training:\n  epochs: 1\n  learning_rate: 0.0\n")
    before = sorted(os.listdir(os.path.join(run, "serving")))
    code = cli.main(["run", "--data", synthetic_folder, "--output", run, "--config", str(config)])
    assert code == 0
    out = capsys.readouterr().out
    assert "Blessed: no" in out and "gate failed: RMSE" in out
    assert sorted(os.listdir(os.path.join(run, "serving"))) == before


def test_schema_anomalies_stop_the_run_before_training(run, synthetic_folder, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synthetic_folder, data)
    users = (data / R.USERS_FILE).read_text().splitlines()
    header, first = users[0], users[1].split(",")
    first[3] = "astronaut"  # occupation outside the schema's closed domain
    (data / R.USERS_FILE).write_text("\n".join([header, ",".join(first)] + users[2:]) + "\n")
    before = sorted(os.listdir(os.path.join(run, "serving")))
    trained = len(_store(run).get_artifacts_by_type("Model"))
    code = cli.main(["run", "--data", str(data), "--output", run])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ANOMALIES
    assert "feature 'occupation'" in err and err.startswith("error: ")
    assert sorted(os.listdir(os.path.join(run, "serving"))) == before
    assert len(_store(run).get_artifacts_by_type("Model")) == trained


def test_examples_a_runner_lost_stop_the_run_with_nothing_published(
        run, synthetic_folder, tmp_path, capsys, monkeypatch):
    """A runner that drops elements without failing (the multi-processing DirectRunner at 10M)
    is simulated by a shard reader that drops one rating."""
    from components.example_gen import executor as example_gen

    data = tmp_path / "data"
    shutil.copytree(synthetic_folder, data)
    ratings = R.read_table(str(data), R.RATINGS_FILE)
    dropped = ratings[0]
    read = example_gen.ratings_in

    def lossy_read(shard):
        return (rating for rating in read(shard) if rating != dropped)

    monkeypatch.setattr(example_gen, "ratings_in", lossy_read)
    store = _store(run)
    published = {kind: len(store.get_artifacts_by_type(kind)) for kind in ARTIFACT_TYPES}
    before = sorted(os.listdir(os.path.join(run, "serving")))
    written = glob.glob(os.path.join(run, "**", "FileBasedExampleGen", "examples", "*"),
                        recursive=True)
    code = cli.main(["run", "--data", str(data), "--output", run])
    err = capsys.readouterr().err
    assert code == cli.EXIT_EXAMPLES_LOST
    assert err.startswith(
        f"error: {os.path.join(str(data), R.RATINGS_FILE)}: {len(ratings):,} ratings but "
        f"ExampleGen wrote {len(ratings) - 1:,} examples; the Beam runner lost 1 of them (rule: "
        "every rating becomes exactly one example)")
    assert err.count("\n") == 1
    assert {kind: len(store.get_artifacts_by_type(kind)) for kind in ARTIFACT_TYPES} == published
    assert glob.glob(os.path.join(run, "**", "FileBasedExampleGen", "examples", "*"),
                     recursive=True) == written  # the short split files were removed
    assert sorted(os.listdir(os.path.join(run, "serving"))) == before


def test_cli_recommend_prints_titles_and_scores_as_json(run, synthetic_folder, capsys):
    titles = {i.item_id: i.title for i in R.read_table(synthetic_folder, R.ITEMS_FILE)}
    user = R.read_table(synthetic_folder, R.RATINGS_FILE)[0].user_id
    assert cli.main(["recommend", "--user", user, "-k", "4", "--json", "--output", run]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4
    assert all(row["title"] == titles[row["item_id"]] for row in rows)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


def test_cli_recommend_for_a_new_user_with_features(run, capsys):
    code = cli.main(["recommend", "--user", "newcomer", "--age", "30", "--gender", "F",
                     "--occupation", "writer", "--zip-code", "10001", "--output", run])
    assert code == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if ". " in line]) == 10


def test_cli_recommend_needs_all_user_features(run, capsys):
    code = cli.main(["recommend", "--user", "x", "--age", "30", "--output", run])
    assert code == cli.EXIT_DATA_ERROR
    assert "--gender" in capsys.readouterr().err


def test_cli_similar_lists_other_items(run, synthetic_folder, capsys):
    item = R.read_table(synthetic_folder, R.RATINGS_FILE)[0].item_id
    assert cli.main(["similar", "--item", item, "--json", "--output", run]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 10 and item not in [row["item_id"] for row in rows]


def test_cli_without_a_pushed_model_says_so(tmp_path, capsys):
    assert cli.main(["recommend", "--user", "1", "--output", str(tmp_path)]) == cli.EXIT_NO_MODEL
    assert "no pushed model yet" in capsys.readouterr().err
