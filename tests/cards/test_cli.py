"""`beyondbank cards generate` and `cards run` from the command line, and exactly once when the
real process is killed: by the crash drill at chosen stages and by SIGKILL at random moments,
then rerun, the database holds what one clean run leaves."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, create_engine, select
from typer.testing import CliRunner

from beyondbank import schema
from beyondbank.cards.cli import CRASH_AT
from beyondbank.cards.models import CardGrant, CardReward
from beyondbank.cli import app
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.settings import get_settings
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.ledger.models import Account, LedgerTransaction, Posting
from tests import factories as f
from tests.cards import factories as cf

runner = CliRunner()
BEYONDBANK = [str(Path(sys.executable).with_name("beyondbank"))]


def _programme(engine: Engine, members: int = 40) -> None:
    """An alliance of three merchants with budgets, members with linked cards: committed."""
    linked = datetime.now(UTC) - timedelta(days=60)
    with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
        for _ in range(3):
            p = cf.programme(uow, linked, budget_minor=200_000, member_limit=3)
            for _ in range(members):
                member = f.make_member(uow, enrolled_at=linked)
                cf.link_card(uow, member, f"tok_{member.id:012d}", linked)
            assert p.benefit.id
        uow.commit()


def _content(url: str) -> dict[str, Any]:
    """What a run leaves that must not depend on how often it was interrupted."""
    engine = create_engine(url)
    with engine.connect() as c:
        postings = c.execute(
            select(LedgerTransaction.idempotency_key, Account.code, Posting.amount_minor)
            .join(Posting, Posting.transaction_id == LedgerTransaction.id)
            .join(Account, Account.id == Posting.account_id)
        ).all()
        rewards = c.execute(
            select(CardReward.kind, CardReward.txn_id, CardReward.amount_minor, CardReward.points)
        ).all()
        grants = c.execute(
            select(CardGrant.txn_id, CardGrant.reward_minor, CardGrant.clawed_back_minor)
        ).all()
        unposted = c.execute(select(CardReward.id).where(CardReward.posted_at.is_(None))).all()
    engine.dispose()
    return {
        "postings": sorted(map(tuple, postings)),
        "rewards": sorted(map(tuple, rewards)),
        "grants": sorted(map(tuple, grants)),
        "unposted": len(unposted),
    }


def test_generate_then_run(cli_database: Engine, tmp_path: Path) -> None:
    _programme(cli_database, members=10)
    feed = tmp_path / "feed.parquet"

    made = runner.invoke(
        app, ["cards", "generate", "--out", str(feed), "--transactions", "3000", "--seed", "7"]
    )
    assert made.exit_code == 0, made.output
    assert pl.read_parquet(feed).height == 3000

    ran = runner.invoke(app, ["cards", "run", str(feed), "--out-dir", str(tmp_path / "out")])
    assert ran.exit_code == 0, ran.output
    assert "rows read" in ran.output
    assert "3,000" in ran.output
    assert _content(str(cli_database.url))["unposted"] == 0
    assert list((tmp_path / "out").glob("*-rewards.csv"))


def test_a_preview_posts_nothing_and_earns_what_the_run_then_grants(
    cli_database: Engine, tmp_path: Path
) -> None:
    _programme(cli_database, members=10)
    feed = tmp_path / "feed.parquet"
    made = runner.invoke(
        app, ["cards", "generate", "--out", str(feed), "--transactions", "4000", "--seed", "5"]
    )
    assert made.exit_code == 0, made.output

    previewed = runner.invoke(
        app,
        ["cards", "preview", str(feed), "--out-dir", str(tmp_path / "p"), "--chunk-rows", "1000"],
    )

    assert previewed.exit_code == 0, previewed.output
    assert "nothing posted" in previewed.output
    assert "4,000" in previewed.output
    assert _content(str(cli_database.url)) == {
        "postings": [],
        "rewards": [],
        "grants": [],
        "unposted": 0,
    }
    preview = pl.read_parquet(tmp_path / "p" / "preview-feed-rewards.parquet")
    assert preview.height > 0

    ran = runner.invoke(app, ["cards", "run", str(feed), "--out-dir", str(tmp_path / "out")])
    assert ran.exit_code == 0, ran.output
    granted = _content(str(cli_database.url))["rewards"]
    assert granted == sorted(preview.select("kind", "txn_id", "amount_minor", "points").iter_rows())


def test_a_preview_of_a_file_that_is_no_feed_says_so(cli_database: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,feed\n1,2,3\n")
    previewed = runner.invoke(app, ["cards", "preview", str(bad), "--out-dir", str(tmp_path)])
    assert previewed.exit_code == 1
    assert "Not a card feed" in previewed.output


def _run(env: dict[str, str], feed: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own command, our own arguments
        [*BEYONDBANK, "cards", "run", str(feed), "--out-dir", str(out), "--chunk-rows", "1500"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@dataclass(frozen=True)
class Drill:
    """A programme in a database file, a feed, and what one clean run of it leaves."""

    programme: Path
    feed: Path
    expected: dict[str, Any]
    clean_seconds: float

    def victim(self, directory: Path) -> dict[str, str]:
        """The environment of a copy of the programme's database, for a run to kill."""
        killed = directory / "killed.db"
        shutil.copy(self.programme, killed)
        env = {k: v for k, v in os.environ.items() if k != CRASH_AT}
        return {**env, "BEYONDBANK_DATABASE_URL": f"sqlite:///{killed}"}


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Drill:
    """Built once for the module (the drills share a test process): the clean run every drill
    compares with is the same run."""
    directory = tmp_path_factory.mktemp("drill")
    programme = directory / "programme.db"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BEYONDBANK_DATABASE_URL", f"sqlite:///{programme}")
        get_settings.cache_clear()
        engine = make_engine(get_settings().database_url)
        schema.upgrade(engine)
        _programme(engine)
        engine.dispose()
        feed = directory / "feed.csv"
        made = runner.invoke(
            app, ["cards", "generate", "--out", str(feed), "--transactions", "12000", "--seed", "3"]
        )
        assert made.exit_code == 0, made.output
    get_settings.cache_clear()
    clean = directory / "clean.db"
    shutil.copy(programme, clean)
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT}
    started = time.monotonic()
    run = _run({**env, "BEYONDBANK_DATABASE_URL": f"sqlite:///{clean}"}, feed, directory / "a")
    assert run.wait(120) == 0
    took = time.monotonic() - started
    expected = _content(f"sqlite:///{clean}")
    assert expected["rewards"]
    return Drill(programme, feed, expected, took)


@pytest.mark.parametrize(
    "stage", ["others-1-recorded", "chunk-0-matched", "chunk-1-committed", "matched"]
)
@pytest.mark.xdist_group("card-drills")
def test_the_crash_drill_then_a_rerun_equals_a_clean_run(
    drill: Drill, tmp_path: Path, stage: str
) -> None:
    killed = drill.victim(tmp_path)

    dying = _run({**killed, CRASH_AT: stage}, drill.feed, tmp_path / "b")
    assert dying.wait(120) == 137, dying.stderr.read() if dying.stderr else ""
    assert _run(killed, drill.feed, tmp_path / "b").wait(120) == 0

    assert _content(killed["BEYONDBANK_DATABASE_URL"]) == drill.expected


@pytest.mark.xdist_group("card-drills")
def test_sigkill_at_random_moments_then_a_rerun_equals_a_clean_run(
    drill: Drill, tmp_path: Path
) -> None:
    killed = drill.victim(tmp_path)

    moments = random.Random(os.environ.get("PYTEST_XDIST_WORKER", "0")).sample(range(5, 95), 3)
    for percent in sorted(moments):
        process = _run(killed, drill.feed, tmp_path / "b")
        time.sleep(drill.clean_seconds * percent / 100)
        process.send_signal(signal.SIGKILL)
        process.wait(60)
    assert _run(killed, drill.feed, tmp_path / "b").wait(120) == 0

    assert _content(killed["BEYONDBANK_DATABASE_URL"]) == drill.expected
