"""The test suite, laid out as the project: components/, pipeline/, data/, bench/, end_to_end/."""

import os

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
