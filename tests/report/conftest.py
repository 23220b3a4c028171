import pytest

from tests.selection.helpers import load_pku_pairs


@pytest.fixture(scope="session")
def pku_pairs(shared_data):
    return load_pku_pairs(shared_data / "preference/pku_saferlhf_500.jsonl")
