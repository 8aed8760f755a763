"""`recsys serve` on the shared pipeline run's pushed model, over real HTTP on localhost: TF
Serving's REST API, the JSON API, errors, and versions swapped while requests flow."""

import base64
import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import pytest

from pipeline.config import load_config
from pipeline.history import rollback
from pipeline.server.app import BackgroundServer, create_app
from pipeline.server.versions import ModelVersions
from pipeline.serving import Recommender, latest_model_dir
from tests.end_to_end.chromium import screenshot


def _call(base: str, path: str, body=None, raw: bytes = None):
    """(status, JSON body) of a GET, or of a POST when body/raw is given."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture(scope="module")
def output(pipeline_run, tmp_path_factory):
    """A copy of the run's output: the tests push and corrupt versions in it."""
    source, code = pipeline_run
    assert code == 0
    copy = str(tmp_path_factory.mktemp("serve") / "output")
    shutil.copytree(os.path.join(source, "serving"), os.path.join(copy, "serving"))
    return copy


@pytest.fixture(scope="module")
def versions(output):
    versions = ModelVersions(os.path.join(output, "serving"))
    assert versions.poll().startswith("served")
    return versions


@pytest.fixture(scope="module")
def base(versions, synthetic_folder):
    with BackgroundServer(create_app(versions, synthetic_folder)) as server:
        yield f"http://127.0.0.1:{server.port}"


@pytest.fixture(scope="module")
def recommender(versions):
    return versions.served.recommender


@pytest.fixture(scope="module")
def users(recommender):
    return recommender.ids("user")[:3]


def test_predict_answers_in_both_forms_what_the_signature_returns(base, recommender, users):
    expected = recommender.recommend(users, 5)
    status, rows = _call(base, "/v1/models/recsys:predict", {
        "signature_name": "recommend", "instances": [{"user_id": u, "k": 5} for u in users]})
    assert status == 200
    assert [row["item_ids"] for row in rows["predictions"]] == [
        [item for item, _ in user_rows] for user_rows in expected]
    status, columns = _call(base, "/v1/models/recsys:predict", {
        "signature_name": "recommend", "inputs": {"user_id": users, "k": 5}})
    assert status == 200 and columns["outputs"]["item_ids"] == [
        row["item_ids"] for row in rows["predictions"]]


def test_serving_default_rates_b64_examples(base, recommender, pipeline_run):
    import tensorflow as tf

    example = tf.train.Example()
    example.features.feature["user_id"].bytes_list.value.append(recommender.ids("user")[0]
                                                                .encode())
    example.features.feature["item_id"].bytes_list.value.append(recommender.ids("item")[0]
                                                                .encode())
    for name, value in (("age", 30),):
        example.features.feature[name].int64_list.value.append(value)
    for name, value in (("gender", "F"), ("occupation", "other"), ("zip_code", "12345")):
        example.features.feature[name].bytes_list.value.append(value.encode())
    serialized = example.SerializeToString()
    status, body = _call(base, "/v1/models/recsys:predict", {
        "instances": [{"b64": base64.b64encode(serialized).decode()}]})
    assert status == 200, body
    assert body["predictions"] == pytest.approx(recommender.predict_ratings([serialized]))


def test_version_status_and_a_specific_version(base, versions):
    version = versions.served.version
    status, body = _call(base, "/v1/models/recsys")
    assert status == 200 and body["model_version_status"][0] == {
        "version": version, "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}
    body = {"signature_name": "similar_items", "inputs": {"item_id": ["1"], "k": 2}}
    assert _call(base, f"/v1/models/recsys/versions/{version}:predict", body)[0] == 200
    status, error = _call(base, "/v1/models/recsys/versions/1:predict", body)
    assert status == 404 and "Specific(recsys, 1)" in error["error"]
    status, error = _call(base, "/v1/models/other:predict", body)
    assert status == 404 and "other" in error["error"]
    status, metadata = _call(base, "/v1/models/recsys/metadata")
    assert status == 200 and metadata["metadata"]["signature_def"]["recommend"]["inputs"][
        "k"] == {"dtype": "int32", "shape": []}


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/models/recsys:predict", b"{not json", 400, "not JSON"),
    ("/v1/models/recsys:predict", {"signature_name": "nope", "inputs": {}}, 400,
     "signature_name 'nope' is not served"),
    ("/v1/models/recsys:predict",
     {"signature_name": "recommend", "inputs": {"user_id": ["1"], "k": "ten"}}, 400,
     "'k' must hold"),
    ("/v1/models/recsys:predict",
     {"signature_name": "recommend", "inputs": {"user_id": ["1"], "k": 0}}, 400,
     "k must be a positive integer"),
    ("/v1/models/recsys:predict",
     {"signature_name": "recommend", "inputs": {"user_id": ["1"] * 5000, "k": 1}}, 413,
     "at most"),
    ("/v1/models/recsys:predict",
     {"signature_name": "similar_items", "inputs": {"item_id": ["no-such-item"], "k": 3}}, 400,
     "not in the catalog"),
    ("/recommend?user=1&k=0", None, 400, "k: must be a positive integer"),
    ("/recommend?user=1&k=100000", None, 400, "k: at most"),
    ("/recommend?user=1&years=soon", None, 400, "years: expected FROM-TO"),
    ("/recommend?likes=1:9", None, 400, "a rating must be a number in [1, 5]"),
    ("/recommend", None, 400, "give user=ID"),
    ("/similar", None, 400, "give item=ID"),
    ("/no/such/page", None, 404, "Not Found"),
])
def test_bad_requests_get_a_4xx_and_tf_servings_error_form(base, path, body, status, message):
    raw = body if isinstance(body, bytes) else None
    got, answer = _call(base, path, None if raw else body, raw=raw)
    assert got == status and set(answer) == {"error"}
    assert message in answer["error"]


def test_the_json_api_answers_with_titles(base, recommender, users, synthetic_folder):
    from pipeline.serving import item_titles

    titles = item_titles(synthetic_folder)
    status, body = _call(base, f"/recommend?user={users[0]}&k=4")
    assert status == 200 and body["version"] and len(body["items"]) == 4
    assert [i["item_id"] for i in body["items"]] == [
        item for item, _ in recommender.recommend([users[0]], 4)[0]]
    assert all(i["title"] == titles[i["item_id"]] for i in body["items"])
    # A user the model never saw is served (from the cold prior), not refused.
    status, body = _call(base, "/recommend?user=someone-new&k=3")
    assert status == 200 and len(body["items"]) == 3
    status, body = _call(base, "/recommend?likes=1,2:4&genres=Comedy&k=3")
    assert status == 200 and body["likes"] == {"1": 5.0, "2": 4.0}
    assert len(body["items"]) == 3 and not {"1", "2"} & {i["item_id"] for i in body["items"]}
    status, body = _call(base, f"/similar?item={recommender.ids('item')[0]}&k=3")
    assert status == 200 and len(body["items"]) == 3


def test_health_and_readiness(base, versions):
    assert _call(base, "/healthz") == (200, {"status": "ok"})
    assert _call(base, "/readyz") == (200, {"status": "ready",
                                            "version": versions.served.version})


def _copy_version(serving_dir: str, source: str, version: str) -> None:
    staged = os.path.join(serving_dir, f".staged-{version}")
    shutil.copytree(os.path.join(serving_dir, source), staged)
    os.rename(staged, os.path.join(serving_dir, version))


def test_a_new_version_swaps_in_with_no_request_failing(base, versions, users):
    serving_dir = versions.serving_dir
    before = versions.served.version
    failures, done = [], threading.Event()

    def client():
        while not done.is_set():
            status, body = _call(base, f"/recommend?user={users[0]}&k=3")
            if status != 200 or len(body["items"]) != 3:
                failures.append((status, body))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    new = str(int(before) + 1)
    _copy_version(serving_dir, before, new)
    try:
        assert versions.poll() == f"served {new}"
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert not failures
    assert _call(base, "/readyz")[1]["version"] == new


def test_a_corrupt_version_is_refused_and_the_old_one_keeps_serving(base, versions, users):
    serving_dir = versions.serving_dir
    served = versions.served.version
    broken = str(int(served) + 10)
    _copy_version(serving_dir, served, broken)
    with open(os.path.join(serving_dir, broken, "saved_model.pb"), "wb") as model_file:
        model_file.write(b"not a model")
    assert versions.poll().startswith(f"refused {broken}")
    assert versions.poll() is None  # not retried while its folder is unchanged
    assert _call(base, f"/recommend?user={users[0]}&k=3")[0] == 200
    assert _call(base, "/readyz")[1]["version"] == served
    status, body = _call(base, "/v1/models/recsys")
    assert [(s["version"], s["state"]) for s in body["model_version_status"]] == [
        (served, "AVAILABLE"), (broken, "END")]
    assert body["model_version_status"][1]["status"]["error_message"]
    # Written again whole (a push that had not finished), it is tried again and served.
    shutil.rmtree(os.path.join(serving_dir, broken))
    _copy_version(serving_dir, served, broken)
    assert versions.poll() == f"served {broken}"


def test_a_rollback_is_picked_up_like_a_push(base, versions, output, users):
    config = load_config(output_dir=output)
    oldest = sorted((v for v in os.listdir(versions.serving_dir) if v.isdigit()), key=int)[0]
    new, _ = rollback(config, oldest)
    assert versions.poll() == f"served {new}"
    assert latest_model_dir(versions.serving_dir).endswith(new)
    expected = Recommender(os.path.join(versions.serving_dir, oldest)).recommend([users[0]], 3)
    status, body = _call(base, f"/recommend?user={users[0]}&k=3")
    assert status == 200 and body["version"] == new
    assert [i["item_id"] for i in body["items"]] == [item for item, _ in expected[0]]


def test_recsys_serve_refuses_to_start_without_a_model(tmp_path, capsys):
    from pipeline import cli

    assert cli.main(["serve", "--output", str(tmp_path)]) == cli.EXIT_NO_MODEL
    assert "no pushed model yet" in capsys.readouterr().err


def test_recsys_serve_is_the_command_users_start(output, users):
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [os.path.join(os.path.dirname(sys.executable), "recsys"), "serve", "--output",
               output, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                status, body = _call(base, f"/recommend?user={users[0]}&k=2")
                break
            except OSError:
                assert time.monotonic() < deadline, "recsys serve never answered"
                time.sleep(0.5)
        assert status == 200 and len(body["items"]) == 2
    finally:
        server.terminate()
        log = server.communicate(timeout=30)[0]
    assert "Serving" in log and f'"GET /recommend?user={users[0]}&k=2 HTTP/1.1" 200' in log


def _list(driver, list_id: str, count: int):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, f"#{list_id} li")) >= count)
    return [row.get_attribute("data-item-id")
            for row in driver.find_elements(By.CSS_SELECTOR, f"#{list_id} li")]


def _open_page(driver, base: str):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base + "/")
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "true")


def test_the_page_shows_a_users_top_10_and_what_they_rated_highly(
        browser, base, users, synthetic_folder, tmp_path):
    from selenium.webdriver.common.by import By

    from pipeline.server.favourites import favourites

    _open_page(browser, base)
    assert "Model version" in browser.find_element(By.ID, "version").text
    browser.find_element(By.ID, "user").send_keys(users[0])
    browser.find_element(By.ID, "user-go").click()
    shown = _list(browser, "user-top", 10)
    expected = _call(base, f"/recommend?user={users[0]}&k=10")[1]["items"]
    assert shown == [row["item_id"] for row in expected]
    rated = _list(browser, "user-rated", 1)
    assert rated == [item for item, _ in favourites(synthetic_folder)[users[0]]]
    assert expected[0]["title"] in browser.find_element(By.ID, "user-top").text
    screenshot(browser, "user", tmp_path)


def test_the_page_serves_a_new_user_from_ticked_movies_and_genres(browser, base, tmp_path):
    from selenium.webdriver.common.by import By

    _open_page(browser, base)
    movies = browser.find_elements(By.CSS_SELECTOR, "input[name=movie]")
    assert len(movies) >= 3
    liked = [box.get_attribute("value") for box in movies[:3]]
    for box in movies[:3]:
        box.click()
    genre = browser.find_elements(By.CSS_SELECTOR, "input[name=genre]")[0]
    genre.click()
    browser.find_element(By.ID, "new-go").click()
    shown = _list(browser, "new-top", 1)
    query = f"/recommend?likes={','.join(liked)}&genres={genre.get_attribute('value')}&k=10"
    assert shown == [row["item_id"] for row in _call(base, query)[1]["items"]]
    assert not set(shown) & set(liked)
    screenshot(browser, "new_user", tmp_path)


def test_the_page_finds_similar_movies_and_shows_errors(browser, base, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    _open_page(browser, base)
    picker = Select(browser.find_element(By.ID, "item"))
    item = picker.options[1].get_attribute("value")
    picker.select_by_value(item)
    browser.find_element(By.ID, "similar-go").click()
    shown = _list(browser, "similar-top", 10)
    assert shown == [row["item_id"] for row in _call(base, f"/similar?item={item}&k=10")[1][
        "items"]]
    screenshot(browser, "similar", tmp_path)
    browser.find_element(By.ID, "new-go").click()  # nothing ticked
    WebDriverWait(browser, 10).until(
        lambda d: "tick a movie" in d.find_element(By.ID, "new-error").text)
