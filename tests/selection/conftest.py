import pytest

from .helpers import hand_scores, load_pku_pairs


@pytest.fixture
def scores():
    return hand_scores()


@pytest.fixture(scope="session")
def pku_pairs(shared_data):
    return load_pku_pairs(shared_data / "preference/pku_saferlhf_500.jsonl")
