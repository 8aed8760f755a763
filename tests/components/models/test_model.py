"""The hybrid model's layers alone, a training step, and the catalog pass."""

import numpy as np
import pytest
import tensorflow as tf

from components import features as F
from components.models.hybrid import HybridModel, IdEmbedding, ModelConfig, Vocabularies
from components.training.catalog import build_catalog

VOCAB = Vocabularies(users=11, items=21, age_buckets=7, genders=3, occupations=5,
                     zip_prefixes=4, year_buckets=11, genres=6, title_tokens=9)


def _batch(size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    genres = tf.RaggedTensor.from_row_lengths(
        rng.integers(0, VOCAB.genres - 1, size * 2), [2] * size).to_sparse()
    # Titles of one to three words.
    title_lengths = rng.integers(1, 4, size)
    titles = tf.RaggedTensor.from_row_lengths(
        rng.integers(0, VOCAB.title_tokens, title_lengths.sum()), title_lengths).to_sparse()
    features = {
        F.USER_INDEX: rng.integers(0, VOCAB.users - 1, size),
        F.ITEM_INDEX: rng.integers(0, VOCAB.items - 1, size),
        F.AGE_BUCKET: rng.integers(0, VOCAB.age_buckets, size),
        F.GENDER_INDEX: rng.integers(0, 2, size),
        F.OCCUPATION_INDEX: rng.integers(0, 4, size),
        F.ZIP_PREFIX_INDEX: rng.integers(0, 3, size),
        F.YEAR_BUCKET: rng.integers(0, VOCAB.year_buckets, size),
    }
    features = {k: tf.constant(v, tf.int64) for k, v in features.items()}
    features[F.GENRE_INDICES] = tf.cast(genres, tf.int64)
    features[F.TITLE_TOKENS] = tf.cast(titles, tf.int64)
    labels = tf.constant(rng.integers(1, 6, size).astype(np.float32))
    return features, labels


def _candidates():
    """Every known item's features, as the retrieval objective scores them."""
    items = VOCAB.items - 1
    genres = tf.RaggedTensor.from_row_lengths(np.arange(items) % (VOCAB.genres - 1),
                                              [1] * items).to_sparse()
    return {F.ITEM_INDEX: tf.range(items, dtype=tf.int64),
            F.YEAR_BUCKET: tf.constant(np.arange(items) % VOCAB.year_buckets, tf.int64),
            F.GENRE_INDICES: tf.cast(genres, tf.int64),
            F.TITLE_TOKENS: tf.cast(tf.RaggedTensor.from_row_lengths(
                np.arange(items) % VOCAB.title_tokens, [1] * items).to_sparse(), tf.int64)}


def _model(mean_rating=3.5, id_dropout=0.1, retrieval_weight=0.0, title_words=False):
    return HybridModel(VOCAB, ModelConfig(embedding_dim=8, id_dropout=id_dropout,
                                          title_words=title_words),
                       mean_rating=mean_rating, candidates=_candidates(),
                       retrieval_weight=retrieval_weight)


def test_model_predicts_one_rating_per_example():
    model = _model()
    features, _ = _batch(16)
    ratings = model(features)
    assert ratings.shape == (16,)
    np.testing.assert_allclose(ratings.numpy(), 3.5, atol=0.1)  # starts near the mean


def _losses_before_and_after_training(model):
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    features, labels = _batch(64)
    before = model.evaluate(features, labels, verbose=0, return_dict=True)
    model.fit(features, labels, epochs=30, batch_size=64, verbose=0)
    return before, model.evaluate(features, labels, verbose=0, return_dict=True)


def test_training_steps_reduce_both_losses():
    before, after = _losses_before_and_after_training(
        _model(mean_rating=3.0, id_dropout=0.0, retrieval_weight=1.0))
    assert after["rating_mse"] < 0.5 * before["rating_mse"]
    assert after["retrieval_loss"] < 0.8 * before["retrieval_loss"]
    np.testing.assert_allclose(before["retrieval_loss"], np.log(VOCAB.items - 1), rtol=0.05)


def test_catalog_logits_score_every_known_item():
    model = _model()
    features, _ = _batch(4)
    user_vectors, _ = model.user_tower(features)
    assert model.catalog_scores(user_vectors, tf.ones([4])).all().shape == (4, VOCAB.items - 1)


def test_oov_ids_contribute_nothing():
    layer = IdEmbedding(buckets=5, dim=4, l2=0.0, id_dropout=0.0)
    vectors, biases = layer(tf.constant([0, 4], tf.int64))  # 4 is the OOV bucket
    assert np.abs(vectors.numpy()[0]).sum() > 0
    np.testing.assert_array_equal(vectors.numpy()[1], 0.0)
    assert biases.numpy()[1] == 0.0


def test_id_dropout_only_while_training():
    layer = IdEmbedding(buckets=5, dim=4, l2=0.0, id_dropout=1.0)
    index = tf.constant([0, 1, 2], tf.int64)
    assert np.abs(layer(index, training=False)[0].numpy()).sum() > 0
    np.testing.assert_array_equal(layer(index, training=True)[0].numpy(), 0.0)


def test_unknown_user_is_scored_from_demographics_alone():
    model = _model()
    features, _ = _batch(2)
    features[F.USER_INDEX] = tf.constant([VOCAB.users - 1] * 2, tf.int64)  # both unknown
    for name in (F.AGE_BUCKET, F.GENDER_INDEX, F.OCCUPATION_INDEX, F.ZIP_PREFIX_INDEX):
        features[name] = tf.constant([1, 1], tf.int64)  # same demographics
    vectors, biases = model.user_tower(features)
    np.testing.assert_allclose(vectors.numpy()[0], vectors.numpy()[1])


@pytest.mark.parametrize("title_words", [True, False])
def test_an_unknown_items_title_words_shape_its_vector_when_asked_for(title_words):
    model = _model(title_words=title_words)
    features, _ = _batch(3)
    features[F.ITEM_INDEX] = tf.constant([VOCAB.items - 1] * 3, tf.int64)  # none has an id
    features[F.YEAR_BUCKET] = tf.constant([2, 2, 2], tf.int64)
    features[F.GENRE_INDICES] = tf.SparseTensor([[0, 0], [1, 0], [2, 0]], tf.constant(
        [1, 1, 1], tf.int64), [3, 1])
    # The same genres and year; the first two share their title words, the third does not.
    features[F.TITLE_TOKENS] = tf.SparseTensor([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0]],
                                               tf.constant([3, 5, 5, 3, 7], tf.int64), [3, 2])
    vectors = model.item_tower(features)[0].numpy()
    np.testing.assert_allclose(vectors[0], vectors[1], rtol=1e-6)
    assert (np.abs(vectors[0] - vectors[2]).max() > 1e-5) == title_words


def test_catalog_pass_collects_ids_seen_pairs_and_popularity():
    features, labels = _batch(40, seed=3)
    users = features[F.USER_INDEX].numpy()
    items = features[F.ITEM_INDEX].numpy()
    halves = [({k: (tf.sparse.slice(v, [s, 0], [20, 10]) if isinstance(v, tf.SparseTensor)
                    else v[s:s + 20]) for k, v in features.items()}, labels[s:s + 20])
              for s in (0, 20)]
    catalog = build_catalog(halves, num_users=VOCAB.users - 1, num_items=VOCAB.items - 1)
    assert catalog.num_ratings == 40
    np.testing.assert_allclose(catalog.mean_rating, labels.numpy().mean(), rtol=1e-6)
    np.testing.assert_allclose(
        catalog.popularity, np.bincount(items, minlength=VOCAB.items - 1) / 40)
    for user in range(VOCAB.users - 1):
        seen = catalog.seen_items[catalog.seen_splits[user]:catalog.seen_splits[user + 1]]
        assert sorted(seen) == sorted(items[users == user])
    assert catalog.seen_splits[-1] == catalog.seen_splits[-2]  # the unknown user's empty row
    first = int(np.flatnonzero(users == users[5])[0])
    assert catalog.user_features[F.AGE_BUCKET][users[5]] == features[F.AGE_BUCKET].numpy()[first]
    item = items[7]
    first = int(np.flatnonzero(items == item)[0])
    assert sorted(catalog.item_genres[item]) == sorted(
        features[F.GENRE_INDICES].values.numpy()[2 * first:2 * first + 2])
    titles = tf.RaggedTensor.from_sparse(features[F.TITLE_TOKENS]).to_list()
    assert list(catalog.item_title_tokens[item]) == titles[first]


def test_history_without_own_rating_equals_history_that_never_had_it():
    from components.models.hybrid import HistoryEncoder

    splits, items, ratings = np.array([0, 3, 3]), np.array([0, 1, 2]), np.array([5.0, 1.0, 4.0])
    full = HistoryEncoder(splits, items, ratings, mean_rating=3.0, items=4, dim=3, l2=0.0)
    excluded = full(tf.constant([0], tf.int64),
                    exclude=(tf.constant([1], tf.int64), tf.constant([1.0])))
    shorter = HistoryEncoder(np.array([0, 2, 2]), np.array([0, 2]), np.array([5.0, 4.0]),
                             mean_rating=3.0, items=4, dim=3, l2=0.0)
    shorter(tf.constant([0], tf.int64))
    shorter.implicit.assign(full.implicit)
    shorter.explicit.assign(full.explicit)
    np.testing.assert_allclose(excluded.numpy(), shorter(tf.constant([0], tf.int64)).numpy(),
                               atol=1e-6)


def test_history_of_a_batch_equals_each_rows_history_alone():
    """Rows of the same user share one sum; each still leaves out its own rating."""
    from components.models.hybrid import HistoryEncoder

    encoder = HistoryEncoder(np.array([0, 3, 5, 5]), np.array([0, 1, 2, 1, 3]),
                             np.array([5.0, 1.0, 4.0, 2.0, 3.0]), mean_rating=3.0, items=5,
                             dim=3, l2=0.0)
    users, items, ratings = [1, 0, 1, 0, 0], [3, 1, 1, 0, 2], [3.0, 1.0, 2.0, 5.0, 4.0]
    batch = encoder(tf.constant(users, tf.int64),
                    exclude=(tf.constant(items, tf.int64), tf.constant(ratings)))
    for row, (user, item, rating) in enumerate(zip(users, items, ratings)):
        alone = encoder(tf.constant([user], tf.int64),
                        exclude=(tf.constant([item], tf.int64), tf.constant([rating])))
        np.testing.assert_allclose(batch.numpy()[row], alone.numpy()[0], atol=1e-6)
    unknown = encoder(tf.constant([2, 0], tf.int64))  # index 2: the unknown user, no history
    np.testing.assert_array_equal(unknown.numpy()[0], 0.0)


def test_history_depends_on_how_items_were_rated():
    from components.models.hybrid import HistoryEncoder

    def encode(ratings):
        tf.keras.utils.set_random_seed(0)
        return HistoryEncoder(np.array([0, 2, 2]), np.array([0, 1]), np.array(ratings),
                              mean_rating=3.0, items=3, dim=4, l2=0.0)(
            tf.constant([0], tf.int64)).numpy()

    assert not np.allclose(encode([5.0, 1.0]), encode([1.0, 5.0]))


def test_rank_part_is_separate_from_the_rating_part():
    model = HybridModel(VOCAB, ModelConfig(embedding_dim=8, rank_dim=4, id_dropout=0.0),
                        mean_rating=3.0, candidates=_candidates(), retrieval_weight=1.0)
    features, _ = _batch(5)
    user_vectors, _ = model.user_tower(features)
    assert user_vectors.shape == (5, 12)
    assert model.rating_part(user_vectors).shape == (5, 8)
    model.rank_scale.assign(2.0)
    np.testing.assert_allclose(model.rank_user_vectors(user_vectors).numpy(),
                               2.0 * user_vectors.numpy()[:, 8:])
    assert model.catalog_scores(user_vectors, tf.ones([5])).all().shape == (5, VOCAB.items - 1)


def test_users_without_a_known_id_are_ranked_with_the_cold_biases():
    model = _model()
    model.rank_bias.assign(tf.range(VOCAB.items - 1, dtype=tf.float32))
    model.cold_rank_bias.assign(-tf.range(VOCAB.items - 1, dtype=tf.float32))
    biases = model.catalog_scores(tf.zeros([2, 16]), tf.constant([1.0, 0.0])).biases().numpy()
    np.testing.assert_array_equal(biases[0], np.arange(VOCAB.items - 1))
    np.testing.assert_array_equal(biases[1], -np.arange(VOCAB.items - 1))


def test_rating_and_ranking_parts_are_penalized_by_their_own_weights():
    from components.models.hybrid import PartL2

    weights = tf.constant([[1.0, 2.0, 3.0], [0.0, 1.0, 1.0]])
    np.testing.assert_allclose(PartL2(0.5, 0.1, split=2)(weights).numpy(),
                               0.5 * (1 + 4 + 0 + 1) + 0.1 * (9 + 1))


def test_integer_penalty_weights_from_a_config_are_floats():
    from components.models.hybrid import PartL2

    penalty = PartL2(0, 1, split=2)
    assert penalty(tf.ones([2, 3])).numpy() == pytest.approx(2.0)
    assert penalty.gradient(tf.ones([2, 3])).dtype == tf.float32


def test_each_penaltys_written_out_gradient_is_the_tapes():
    from components.models.hybrid import PartL2

    table = tf.Variable(tf.random.normal([5, 3], seed=1))
    for penalty in (PartL2(0.5, 0.1, split=2), PartL2(0.3, 0.3, split=0)):
        with tf.GradientTape() as tape:
            value = penalty(table)
        np.testing.assert_allclose(penalty.gradient(table).numpy(),
                                   tape.gradient(value, table).numpy(), rtol=1e-6)
    np.testing.assert_allclose(PartL2(0.5, 0.1, split=2).gradient(table).numpy(),
                               table.numpy() * 2 * np.array([0.5, 0.5, 0.1], np.float32),
                               rtol=1e-6)


def _history():
    """(seen_splits, seen_items, seen_ratings): three ratings of each known user."""
    rng = np.random.default_rng(5)
    users = VOCAB.users - 1
    return (np.concatenate([np.arange(0, 3 * users + 1, 3), [3 * users]]),
            rng.integers(0, VOCAB.items - 1, 3 * users),
            rng.integers(1, 6, 3 * users).astype(np.float32))


def test_a_steps_gradients_are_the_tapes_of_the_objectives_plus_the_penalties():
    """train_step adds the tables' penalty gradients by hand; they must be what the tape
    gives for the whole objective, on every table (id, content, history, biases)."""
    from components.models.hybrid import penalized_tables, penalty_loss

    model = HybridModel(VOCAB, ModelConfig(embedding_dim=8, rank_dim=4, id_dropout=0.0,
                                           catalog_id_dropout=0.0, l2=0.01, rank_l2=0.002,
                                           title_words=True),
                        mean_rating=3.5, candidates=_candidates(), retrieval_weight=0.5,
                        history=_history())
    features, labels = _batch(32)
    model(features)
    ours, _, _ = model.gradients(features, labels)
    with tf.GradientTape() as tape:
        rating_loss, retrieval_loss = model._objectives(features, labels, training=True)
        loss = rating_loss + 0.5 * retrieval_loss + penalty_loss(model)
    expected = tape.gradient(loss, model.trainable_variables)
    # Every table that carried an L2 penalty as a Keras regularizer, each once.
    names = [table.name for table, _ in penalized_tables(model)]
    assert sorted(names) == sorted(f"{model.name}/{name}:0" for name in (
        "user_tower/user_id/vectors/embeddings", "user_tower/user_id/biases/embeddings",
        "user_tower/age/embeddings", "user_tower/gender/embeddings",
        "user_tower/occupation/embeddings", "user_tower/zip_prefix/embeddings",
        "user_tower/history/implicit", "user_tower/history/explicit",
        "item_tower/item_id/vectors/embeddings", "item_tower/item_id/biases/embeddings",
        "item_tower/genres/embeddings", "item_tower/title/embeddings",
        "item_tower/year/embeddings"))
    for variable, mine, theirs in zip(model.trainable_variables, ours, expected):
        np.testing.assert_allclose(tf.convert_to_tensor(mine).numpy(),
                                   tf.convert_to_tensor(theirs).numpy(), rtol=1e-5, atol=1e-7,
                                   err_msg=variable.name)


def test_rank_biases_start_at_log_popularity():
    popularity = np.arange(1, VOCAB.items, dtype=np.float32)
    popularity /= popularity.sum()
    model = HybridModel(VOCAB, ModelConfig(embedding_dim=8), mean_rating=3.0,
                        candidates=_candidates(), retrieval_weight=1.0, popularity=popularity)
    for known in (1.0, 0.0):
        scores = model.catalog_scores(tf.zeros([1, 8]), tf.constant([known]))
        np.testing.assert_allclose(scores.biases().numpy()[0],
                                   np.log(popularity), rtol=1e-6)
    trainable = {id(v) for v in model.trainable_variables}
    assert id(model.rank_bias) in trainable and id(model.cold_rank_bias) not in trainable


def _given_scores(rows):
    """CatalogScores whose scores are the given matrix: users are its rows, items the axes."""
    from components.models.hybrid import CatalogScores

    rows = tf.constant(rows)
    items = rows.shape[1]
    return CatalogScores(rows, tf.eye(items), tf.zeros([items]), tf.zeros([items]),
                         tf.ones([rows.shape[0]]))


def test_catalog_scores_of_items_and_sum_of_squares_match_the_full_matrix():
    from components.models.hybrid import CatalogScores

    rng = np.random.default_rng(3)
    users, items = rng.normal(size=(6, 4)), rng.normal(size=(9, 4))
    biases, cold = rng.normal(size=9), rng.normal(size=9)
    known = np.array([1, 0, 1, 1, 0, 0], np.float32)
    scores = CatalogScores(*(tf.constant(a, tf.float32) for a in (users, items, biases, cold)),
                           tf.constant(known))
    full = users @ items.T + np.where(known[:, None] > 0, biases, cold)
    np.testing.assert_allclose(scores.all().numpy(), full, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores.sum_of_squares().numpy(), (full ** 2).sum(axis=1),
                               rtol=1e-4)
    positives = np.array([0, 8, 3, 3, 5, 1])
    np.testing.assert_allclose(scores.of(tf.constant(positives)).numpy(),
                               full[np.arange(6), positives], rtol=1e-5, atol=1e-5)


def test_softmax_retrieval_is_cross_entropy_over_the_catalog():
    from components.models.hybrid import SoftmaxRetrieval

    loss = SoftmaxRetrieval()(_given_scores([[2.0, 0.0, 0.0]]), tf.constant([0], tf.int64),
                              tf.constant([0], tf.int64))
    np.testing.assert_allclose(loss.numpy(), [-np.log(np.exp(2) / (np.exp(2) + 2))], rtol=1e-6)


def test_weighted_squares_retrieval_matches_hand_computation():
    from components.models.hybrid import WeightedSquaresRetrieval

    task = WeightedSquaresRetrieval(np.array([2, 4]), unobserved_weight=0.5)
    scores = _given_scores([[0.5, 0.2, 0.0], [1.0, 0.0, 0.4]])
    loss = task(scores, tf.constant([0, 2], tf.int64), tf.constant([0, 1], tf.int64)).numpy()
    np.testing.assert_allclose(loss, [(1 - 0.5) ** 2 + 0.5 / 2 * (0.25 + 0.04),
                                      (1 - 0.4) ** 2 + 0.5 / 4 * (1.0 + 0.16)], rtol=1e-6)


def test_every_task_starts_strangers_on_the_popularity_ranking():
    from components.models.hybrid import SoftmaxRetrieval, WeightedSquaresRetrieval

    popularity = np.array([0.1, 0.5, 0.0, 0.4])
    for task in (SoftmaxRetrieval(), WeightedSquaresRetrieval(np.array([1]), 0.2)):
        biases = task.initial_biases(popularity)
        assert list(np.argsort(-biases)) == list(np.argsort(-popularity))


def test_weighted_squares_training_reduces_both_losses():
    from components.models.hybrid import WeightedSquaresRetrieval

    model = HybridModel(VOCAB, ModelConfig(embedding_dim=8, rank_dim=4, id_dropout=0.0),
                        mean_rating=3.0, candidates=_candidates(), retrieval_weight=1.0,
                        retrieval=WeightedSquaresRetrieval(np.full(VOCAB.users - 1, 6), 0.2))
    before, after = _losses_before_and_after_training(model)
    assert after["rating_mse"] < 0.5 * before["rating_mse"]
    assert after["retrieval_loss"] < 0.8 * before["retrieval_loss"]


def test_catalog_id_dropout_ranks_the_dropped_candidates_from_their_content_alone():
    """In training, a candidate whose id is hidden scores as a movie nobody rated is served:
    its content vector and content rank bias (components/training/cold_items.py)."""
    model = HybridModel(VOCAB, ModelConfig(embedding_dim=8, rank_dim=4, id_dropout=0.0,
                                           catalog_id_dropout=1.0),
                        mean_rating=3.5, candidates=_candidates(), retrieval_weight=1.0)
    users = tf.random.normal([3, 12])
    model.catalog_scores(users, tf.ones([3]))  # builds the layers
    model.rank_bias.assign(tf.fill(model.rank_bias.shape, 50.0))  # never used when dropped
    hidden = _candidates()
    hidden[F.ITEM_INDEX] = tf.fill(tf.shape(hidden[F.ITEM_INDEX]), tf.constant(VOCAB.items - 1,
                                                                               tf.int64))
    content_vectors, _ = model.item_tower(hidden)
    expected = (tf.matmul(model.rank_user_vectors(users), model.rank_part(content_vectors),
                          transpose_b=True)
                + model.item_tower.content_rank_bias(_candidates())[None, :])
    for known in (tf.ones([3]), tf.zeros([3])):
        np.testing.assert_allclose(
            model.catalog_scores(users, known, training=True).all().numpy(), expected.numpy(),
            rtol=1e-5, atol=1e-6)
    # Outside training every candidate keeps its id.
    served = model.catalog_scores(users, tf.ones([3])).all().numpy()
    assert np.all(served > expected.numpy() + 40.0)
