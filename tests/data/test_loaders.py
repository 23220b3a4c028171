import json

import numpy as np
import pytest

from pdray.data import build_conflict_dataset, describe, load_source
from pdray.data.ultrafeedback import split_transcript

from .helpers import accounted, uf_raw_row, write_jsonl

PREF = "preference"


def _first(path):
    return json.loads(path.read_text().splitlines()[0])


def test_pku_real_file_both(shared_data):
    r = load_source(str(shared_data / PREF / "pku_saferlhf_500.jsonl"), "pku_saferlhf")
    assert r.counts == {"rows_in": 500, "rows_out": 500, "quarantined": 0, "dropped": 0,
                        "pairs_out": 1000, "aspect_disagreements": 117}
    t = r.table
    assert t.num_rows == 1000 and len(set(t["id"].to_pylist())) == 1000
    info = describe(t)
    assert info["aspects"] == {"harmlessness": 500, "helpfulness": 500}
    # helpfulness and harmlessness prefer different responses on 117 of the 500 source pairs
    assert info["disagreement"]["helpfulness"]["harmlessness"] == pytest.approx(117 / 500)
    # ground truth 1/0 per aspect: mean-of-aspects ties exactly where the labels disagree
    assert info["holistic_ties"] == 2 * 117 and info["conflict_rate"] == 0.0
    first = t.slice(0, 2).to_pylist()
    assert first[0]["id"].endswith(":helpfulness") and first[1]["id"].endswith(":harmlessness")
    assert first[0]["id"].split(":")[0] == first[1]["id"].split(":")[0]
    src = _first(shared_data / PREF / "pku_saferlhf_500.jsonl")
    w = src["better_response_id"]
    assert first[0]["chosen"] == src[f"response_{w}"]
    assert first[0]["chosen_ratings"] == [("helpfulness", 1.0), ("harmlessness",
                                          float(src["safer_response_id"] == w))]


def test_pku_real_file_split(shared_data):
    p = str(shared_data / PREF / "pku_saferlhf_500.jsonl")
    a = load_source(p, "pku_saferlhf", aspect_assignment="split", seed=1)
    b = load_source(p, "pku_saferlhf", aspect_assignment="split", seed=1)
    c = load_source(p, "pku_saferlhf", aspect_assignment="split", seed=2)
    assert a.table.num_rows == 500 and a.counts["pairs_out"] == 500
    counts = describe(a.table)["aspects"]
    assert set(counts) == {"helpfulness", "harmlessness"} and 200 < counts["helpfulness"] < 300
    assert a.table["aspect"].to_pylist() == b.table["aspect"].to_pylist()
    assert a.table["aspect"].to_pylist() != c.table["aspect"].to_pylist()


def test_helpsteer2_real_file(shared_data):
    h = load_source(str(shared_data / PREF / "helpsteer2_100.jsonl"), "helpsteer2")
    assert h.kind == "responses"
    assert (h.counts["rows_in"], h.counts["responses_out"], h.counts["prompts"]) == (100, 100, 50)
    sizes = {}
    for pid in h.table["prompt_id"].to_pylist():
        sizes[pid] = sizes.get(pid, 0) + 1
    assert set(sizes.values()) == {2}
    row = h.table.slice(0, 1).to_pylist()[0]
    src = _first(shared_data / PREF / "helpsteer2_100.jsonl")
    assert dict(row["ratings"]) == {a: float(src[a]) for a in
                                    ("helpfulness", "correctness", "coherence", "complexity",
                                     "verbosity")}
    b = build_conflict_dataset(h.table, 0.1, seed=0)
    assert b.counts["prompts_in"] == 50
    assert b.table.num_rows + len(b.dropped) == 50
    assert {d["reason"] for d in b.dropped} == {"tied under every aspect"}
    assert set(describe(b.table)["aspects"]) <= {"helpfulness", "correctness", "coherence",
                                                 "complexity", "verbosity"}


def test_ultrafeedback_binarized_real_file(shared_data):
    u = load_source(str(shared_data / PREF / "ultrafeedback_binarized_1k.jsonl"),
                    "ultrafeedback_binarized")
    # one source row has chosen == rejected: left out as "identical responses", and counted
    assert u.table.num_rows == 999 and u.counts["quarantined"] == 0 and accounted(u)
    assert [d["reason"] for d in u.dropped] == ["identical responses"]
    row = u.table.slice(0, 1).to_pylist()[0]
    src = _first(shared_data / PREF / "ultrafeedback_binarized_1k.jsonl")
    assert row["prompt"] == src["prompt"]
    assert row["chosen"] == src["chosen"] and isinstance(src["chosen"], str)
    assert row["rejected"] == src["rejected"]
    assert row["chosen_overall"] == src["metadata"]["rating_chosen"] == 5.0
    assert row["rejected_overall"] == 4.5
    assert row["aspect"] == "overall" and row["source"] == "ultrachat"
    assert len(set(u.table["id"].to_pylist())) == 999


def test_hh_rlhf_real_file(shared_data):
    hh = load_source(str(shared_data / PREF / "hh_rlhf_harmless_test.jsonl.gz"), "hh_rlhf")
    assert hh.counts["rows_in"] == 2312 and accounted(hh)
    assert hh.counts["rows_out"] + hh.counts["dropped"] == 2312
    assert hh.counts["dropped"] == len(hh.dropped)
    assert {d["reason"] for d in hh.dropped} <= {"empty final assistant turn", "identical responses"}
    p = hh.table.slice(0, 1).to_pylist()[0]
    assert p["prompt"].startswith("Human:") and p["prompt"].endswith("Assistant:")
    assert set(hh.table["aspect"].to_pylist()) == {"harmlessness"}
    # the same transcripts through the binarized/TRL adapter: the prefix split is automatic
    via_trl = load_source(str(shared_data / PREF / "hh_rlhf_harmless_test.jsonl.gz"), "trl",
                          aspect="harmlessness")
    assert via_trl.table["chosen"].to_pylist() == hh.table["chosen"].to_pylist()


def test_split_transcript_hand_example():
    c = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: tell me\n\nAssistant: sure, here"
    r = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: tell me\n\nAssistant: no"
    prompt = "Human: hi\n\nAssistant: hello\n\nHuman: tell me\n\nAssistant:"
    assert split_transcript(c, r) == (prompt, "sure, here", "no")


def test_ultrafeedback_raw_na_skipped_and_counted(tmp_path):
    rows = [uf_raw_row("q1", [["5", "4", "5", "4"], ["2", "3", "N/A", "2"], ["3", "3", "3", "3"]]),
            uf_raw_row("q2", [["1", "5", "2", "5"], ["4", "2", "4", "2"]])]
    p = write_jsonl(tmp_path / "uf.jsonl", rows)
    r = load_source(p, "ultrafeedback_raw")
    assert r.counts == {"rows_in": 5, "rows_out": 4, "quarantined": 0, "dropped": 1,
                        "source_rows": 2, "responses_out": 4, "prompts": 2}
    assert r.dropped == [{"file": p, "row": 0,
                          "field": "completions[1].annotations.instruction_following.Rating",
                          "reason": "non-numeric rating 'N/A'"}]
    resp = r.table.to_pylist()
    assert dict(resp[0]["ratings"]) == {"helpfulness": 5.0, "honesty": 4.0,
                                        "instruction_following": 5.0, "truthfulness": 4.0}
    assert resp[0]["overall"] == 4.5 and resp[0]["source"] == "m0"
    b = build_conflict_dataset(r.table, None, seed=0)
    assert b.table.num_rows == 2


def test_trl_chat_messages_and_string_pairs(tmp_path):
    p = write_jsonl(tmp_path / "trl.jsonl", [
        {"chosen": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi?"},
                    {"role": "assistant", "content": "hello!"}],
         "rejected": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi?"},
                      {"role": "assistant", "content": "go away"}], "aspect": "helpfulness",
         "score_chosen": 8, "score_rejected": 3},
        {"prompt": "2+2?", "chosen": "4", "rejected": "5", "id": "x1"}])
    t = load_source(p, "trl", aspect="truthfulness").table.to_pylist()
    assert (t[0]["prompt"], t[0]["chosen"], t[0]["rejected"], t[0]["aspect"]) == (
        "System: be nice\n\nUser: hi?", "hello!", "go away", "helpfulness")
    assert (t[0]["chosen_overall"], t[0]["rejected_overall"]) == (8.0, 3.0)
    assert (t[1]["id"], t[1]["prompt"], t[1]["aspect"]) == ("x1", "2+2?", "truthfulness")


def test_generic_mapping_jsonl_and_parquet(tmp_path):
    import pyarrow as pa

    from pdray.io import write_table

    rows = [{"q": "x", "good": "y", "bad": "z", "crit": "honesty", "s1": 2, "s2": 1},
            {"q": "x2", "good": "y2", "bad": "z2", "crit": None, "s1": None, "s2": None}]
    cols = {"prompt": "q", "chosen": "good", "rejected": "bad", "aspect": "crit",
            "chosen_overall": "s1", "rejected_overall": "s2"}
    for path in (tmp_path / "g.jsonl", tmp_path / "g.parquet"):
        write_table(pa.Table.from_pylist(rows), path)
        r = load_source(str(path), "generic", columns=cols, aspect="helpfulness")
        t = r.table.to_pylist()
        assert [x["aspect"] for x in t] == ["honesty", "helpfulness"]
        assert (t[0]["prompt"], t[0]["chosen"], t[0]["chosen_overall"]) == ("x", "y", 2.0)
        assert accounted(r) and r.counts["rows_out"] == 2


def test_generic_local_datasets(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list([{"prompt": f"p{i}", "chosen": "c", "rejected": "r"}
                                     for i in range(3)])
    ds.save_to_disk(str(tmp_path / "ds"))
    t = load_source(str(tmp_path / "ds"), "generic", hub=True, aspect="overall").table
    assert t.num_rows == 3 and set(t["aspect"].to_pylist()) == {"overall"}
    j = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "y_w": "b", "y_l": "c"}])
    r = load_source("json", "generic", hub=True, data_files=j, aspect="honesty",
                    columns={"prompt": "question", "chosen": "y_w", "rejected": "y_l"})
    assert r.table.to_pylist()[0]["chosen"] == "b" and r.counts["rows_in"] == 1


def test_conflict_build_on_raw_rows_has_two_aspects_per_matrix(tmp_path):
    rng = np.random.default_rng(3)
    rows = [uf_raw_row(f"q{i}", rng.integers(1, 6, size=(3, 4)).astype(str).tolist())
            for i in range(60)]
    r = load_source(write_jsonl(tmp_path / "uf.jsonl", rows), "ultrafeedback_raw")
    b = build_conflict_dataset(r.table, 0.2, seed=0)
    m = b.disagreement
    assert set(m) == {"helpfulness", "honesty", "instruction_following", "truthfulness"}
    assert all(m[a][a] == 0.0 for a in m) and m["honesty"]["truthfulness"] == m["truthfulness"]["honesty"]
