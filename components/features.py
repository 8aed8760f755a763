"""Every feature's name, defined once: raw columns, derived slicing columns, transformed keys.

The raw column names are also the project's raw data format (see data/raw_format.py) and the
feature names of the tf.Examples that ExampleGen emits and that `serving_default` parses.
"""

# Raw feature columns (tf.Example features emitted by ExampleGen).
USER_ID = "user_id"
ITEM_ID = "item_id"
RATING = "rating"
TIMESTAMP = "timestamp"
AGE = "age"
GENDER = "gender"
OCCUPATION = "occupation"
ZIP_CODE = "zip_code"
TITLE = "title"
YEAR = "year"
GENRES = "genres"

# Derived in ExampleGen for evaluation slices only; the model never reads them.
AGE_GROUP = "age_group"
USER_ACTIVITY = "user_activity"
# What the Evaluator and the release gate report metrics by.
SLICES = (GENDER, AGE_GROUP, USER_ACTIVITY)

LABEL = RATING
USER_FEATURES = (AGE, GENDER, OCCUPATION, ZIP_CODE)
ITEM_FEATURES = (TITLE, YEAR, GENRES)
# Raw features the model consumes (and `serving_default` parses).
MODEL_INPUTS = (USER_ID, ITEM_ID) + USER_FEATURES + ITEM_FEATURES

# Transformed feature keys (outputs of components/transform/preprocessing.py, inputs of the model).
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"
AGE_BUCKET = "age_bucket"
GENDER_INDEX = "gender_index"
OCCUPATION_INDEX = "occupation_index"
ZIP_PREFIX_INDEX = "zip_prefix_index"
YEAR_BUCKET = "year_bucket"
GENRE_INDICES = "genre_indices"
TITLE_TOKENS = "title_tokens"
LABEL_KEY = "rating_label"

# Vocabulary names written by Transform, read back at export time.
USER_VOCAB = "user_id_vocab"
ITEM_VOCAB = "item_id_vocab"
TITLE_VOCAB = "title_token_vocab"

# Bucket boundaries, shared by Transform and the evaluation slices.
AGE_BOUNDARIES = (18, 25, 35, 45, 50, 56)
YEAR_BOUNDARIES = (1930, 1950, 1960, 1970, 1980, 1990, 1995, 2000, 2010)
# Users' rating counts at or above each boundary fall in the next activity slice.
ACTIVITY_BOUNDARIES = (20, 50, 150)
ZIP_PREFIX_LENGTH = 3
OOV_BUCKETS = 1
# A title word is a feature when at least this many training ratings are of movies whose
# title has it (rarer words would be an id in disguise); the most frequent ones, up to a cap.
TITLE_WORD_MIN_RATINGS = 10
TITLE_WORDS = 5000
