"""ExampleGen's join emits, for every rating, the serialized example of its rating, user and
item features: the same bytes as the example built feature by feature, so hash splits keyed
on the serialized example do not move."""

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.testing.util import assert_that, equal_to

from components import features as F
from components.example_gen import JoinRatingsWithFeatures, activity_group, age_group
from data import raw_format as R
from data import synthetic


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return synthetic.generate(str(tmp_path_factory.mktemp("synthetic")), 30, 40, 400, seed=3)


def _built_feature_by_feature(rating, user, item, count) -> bytes:
    def strings(*values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    def ints(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    feature = {
        F.USER_ID: strings(rating.user_id), F.ITEM_ID: strings(rating.item_id),
        F.RATING: tf.train.Feature(float_list=tf.train.FloatList(value=[rating.rating])),
        F.TIMESTAMP: ints(rating.timestamp), F.AGE: ints(user.age),
        F.GENDER: strings(user.gender), F.OCCUPATION: strings(user.occupation),
        F.ZIP_CODE: strings(user.zip_code), F.TITLE: strings(item.title),
        F.GENRES: strings(*item.genres), F.AGE_GROUP: strings(age_group(user.age)),
        F.USER_ACTIVITY: strings(activity_group(count))}
    if item.year:
        feature[F.YEAR] = ints(item.year)
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


def test_every_rating_becomes_the_bytes_of_its_joined_example(folder):
    ratings = R.read_table(folder, R.RATINGS_FILE)
    users = {u.user_id: u for u in R.read_table(folder, R.USERS_FILE)}
    items = {i.item_id: i for i in R.read_table(folder, R.ITEMS_FILE)}
    counts = {}
    for rating in ratings:
        counts[rating.user_id] = counts.get(rating.user_id, 0) + 1
    expected = [_built_feature_by_feature(r, users[r.user_id], items[r.item_id],
                                          counts[r.user_id]) for r in ratings]
    with beam.Pipeline() as pipeline:
        examples = pipeline | JoinRatingsWithFeatures({"input_base": folder}, R.RATINGS_FILE)
        assert_that(examples, equal_to(expected))
