"""No attack can spend more queries than its session was given, whatever it sends or reaches (issue: integrity).

Every route out of a session that we could think of is tried here: the client's private attributes, a reopen of the
session over its own pipe (the exploit that once worked), forged and malformed requests, a second session with the
same id, pickles that would run code in the server or in the campaign, and, from inside the attacker's process, a
search of everything the process holds.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile

from attacks.attacker_process import AttackerError, AttackerProcess
from campaigns.campaign import CampaignIntegrityError, GoalSpec, SourceUtterance, run_campaign
from attacks.constraints import PerturbationBudget
from attacks.oracle import OracleError, OracleServer, QueryBudgetExceeded
from attacks.process_host import ProcessHost
from attacks.wire import WireError, pack, unpack
from tests.special_attacks import EscapeAttack, OverBudgetAttack
from tests.test_attacks import speech_like
from tests.toy_system import toy_system


@pytest.fixture(scope="module")
def server():
    with OracleServer(functools.partial(toy_system, 0)) as server:
        yield server


class CreatesFile:
    """Unpickling this creates ``path``: the marker of code run by whoever unpickles it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def query_message(waveforms: np.ndarray, **body) -> bytes:
    request = {"kind": "query", "score_texts": None, "transcribe": True, "detect": False, **body}
    return pack(request, waveforms.astype(np.float32), np.full(len(waveforms), waveforms.shape[1], np.int64))


def raw(oracle, message: bytes) -> dict:
    """Send bytes on the session's own pipe (bypassing the client) and decode the server's answer."""
    oracle._connection.send_bytes(message)
    return unpack(oracle._connection.recv_bytes())[0]


def test_budget_is_enforced_by_the_server_whatever_the_client_counts(server):
    oracle = server.session(3)
    batch = np.stack([speech_like()] * 4)
    assert raw(oracle, query_message(batch))["status"] == "budget"  # 4 on a 3-query session: nothing evaluated
    for _ in range(3):
        oracle._used = 0  # the attacker's own counter: resetting it buys nothing
        oracle.query(batch[:1])
    oracle._used, oracle._budget = 0, 10**6
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(batch[:1])
    assert server.usage(oracle.session_id) == (3, 3)


def test_a_session_cannot_reopen_or_resize_itself(server):
    """The exploit of issue 25: ("open", own id, 10**6) sent over the session's pipe re-opened it."""
    oracle = server.session(3)
    oracle.query(speech_like()[None])
    for message in (("open", oracle.session_id, 10**6), ("open", 10**9, 10**6), ("close",)):
        oracle._connection.send(message)  # pickled, as the old protocol took it
        answer = unpack(oracle._connection.recv_bytes())[0]
        assert answer["status"] == "error" and "refused" in answer["message"]
    assert server.usage(oracle.session_id) == (3, 1)
    oracle.query(np.stack([speech_like()] * 2))
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(speech_like()[None])
    assert server.usage(oracle.session_id) == (3, 3)


@pytest.mark.parametrize("message", [
    pytest.param(lambda w: pack({"kind": "open", "score_texts": None, "transcribe": True, "detect": False},
                                w, np.full(1, w.shape[1])), id="kind-open"),
    pytest.param(lambda w: query_message(w, session=5), id="names-a-session"),
    pytest.param(lambda w: pack({"kind": "query", "score_texts": None, "transcribe": True, "detect": False},
                                w, np.full(3, w.shape[1])), id="lengths-mismatch"),
    pytest.param(lambda w: query_message(w) + b"\x00" * 8, id="trailing-bytes"),
    pytest.param(lambda w: query_message(w)[:-4], id="truncated"),
    pytest.param(lambda w: b"\x10\x00\x00\x00{not json at all}", id="not-json"),
    pytest.param(lambda w: query_message(w).replace(b'"<f4"', b'"|O8"'), id="object-dtype"),
    pytest.param(lambda w: query_message(w, transcribe="yes"), id="bad-flag"),
], )
def test_forged_requests_are_refused_and_cost_nothing(server, message):
    oracle = server.session(2)
    answer = raw(oracle, message(speech_like()[None]))
    assert answer["status"] == "error" and answer["message"].startswith("refused"), answer
    assert server.usage(oracle.session_id) == (2, 0)
    assert oracle.query(np.stack([speech_like()] * 2)).transcripts  # the session still works, with its budget


def test_session_ids_are_never_reused_and_ended_sessions_stay_ended(server):
    oracle = server.session(2)
    attacker_end, server_end = server._context.Pipe()
    with pytest.raises(OracleError, match="never reused"):
        server._request(("open", oracle.session_id, 10**6, server_end, None))
    assert server.end(oracle.session_id) == (2, 0)
    with pytest.raises(OracleError, match="closed"):
        oracle.query(speech_like()[None])
    with pytest.raises(OracleError, match="never reused"):
        server._request(("open", oracle.session_id, 10**6, server_end, None))
    attacker_end.close()
    server_end.close()
    handed = server.session(2)
    ticket = handed.hand_over()
    with pytest.raises(OracleError, match="handed over"):
        handed.query(speech_like()[None])
    ticket.connection.close()


def test_unpickling_tricks_run_no_code_in_the_server(server, tmp_path):
    marker = tmp_path / "server-ran-attacker-code"
    oracle = server.session(2)
    oracle._connection.send(CreatesFile(str(marker)))
    answer = unpack(oracle._connection.recv_bytes())[0]
    assert answer["status"] == "error" and not marker.exists()
    for thing in (oracle, server):
        with pytest.raises(pickle.PicklingError):
            pickle.dumps(thing)
    with pytest.raises(WireError, match="not plain data"):
        pack({"evil": CreatesFile(str(marker))})


def _pickling_attacker(marker: str, connection, *_options) -> None:
    """A hostile attacker's process: answers the owner with pickles that would run code there."""
    connection.send(("ready", CreatesFile(marker)))


class PicklingAttacker(AttackerProcess):
    def __init__(self, marker: Path) -> None:
        ProcessHost.__init__(self, _pickling_attacker, str(marker), None, name="attacker")


def test_unpickling_tricks_run_no_code_in_the_campaign(tmp_path):
    marker = tmp_path / "campaign-ran-attacker-code"
    with pytest.raises(AttackerError, match="malformed"):
        PicklingAttacker(marker)
    assert not marker.exists()


def _source(tmp_path: Path, seed: int = 0, rms: float = 0.1) -> SourceUtterance:
    path = tmp_path / f"source-{seed}.flac"
    soundfile.write(str(path), speech_like(0.8, seed=seed) * (rms / 0.1), 16_000)
    return SourceUtterance(f"utt-{seed}", str(path), "TURN ON THE LIGHT")


def test_the_attackers_process_reaches_no_host_and_no_extra_query(tmp_path, server):
    """Inside the campaign's attacker process the attack finds no process host (no admin pipe), only its own two
    pipes (its session and its job channel), and gets exactly its budget answered: one query went to the clean
    transcript, so 9 of 10, however it counts or asks."""
    cache = run_campaign([_source(tmp_path)], None, "toy", EscapeAttack(), GoalSpec("untargeted"),
                         PerturbationBudget(), tmp_path / "cache", query_budget=10, progress=False, server=server)
    (record,) = cache.records()
    assert record["transcript_adversarial"] == "HOSTS 0 PIPES 2 ANSWERED 9"
    assert record["queries"] == 10  # the server's count, not the attack's


def test_audio_outside_the_budget_is_refused_and_earlier_records_are_kept(tmp_path, server, attacker):
    sources = [_source(tmp_path, 0, rms=0.05), _source(tmp_path, 1, rms=0.1)]  # the attack misbehaves on the second
    run = functools.partial(run_campaign, sources, None, "toy", OverBudgetAttack(min_rms=0.08), GoalSpec("untargeted"),
                            PerturbationBudget("snr"), tmp_path / "cache", query_budget=5, progress=False, server=server,
                            attacker=attacker)
    with pytest.raises(CampaignIntegrityError, match="utt-1: the attack returned audio outside its budget snr10"):
        run()
    (folder,) = (tmp_path / "cache").iterdir()
    manifest = (folder / "manifest-rank0.jsonl").read_text().splitlines()
    assert [json.loads(line)["utterance_id"] for line in manifest] == ["utt-0"]
    assert sorted(p.name for p in (folder / "audio").iterdir()) == ["utt-0.wav"]
