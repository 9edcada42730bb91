"""Online clustering on real texts: paraphrases join one cluster, unrelated posts do not, and
the state lives in the database so another session (another worker) continues it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import select

from socialcare.surge.models import SurgeAccount, SurgeCluster
from socialcare.surge.service import ObservedPost, observe
from tests.factories import make_account
from tests.surge.conftest import observed

T0 = datetime(2017, 11, 14, 15, 0, tzinfo=UTC)
LOGIN = [
    "@SpotifyCares I can't log in to spotify, it says my password is wrong but it isn't",
    "spotify won't let me log in, keeps saying incorrect password @SpotifyCares",
    "@SpotifyCares login keeps failing on spotify even after resetting my password",
    "can't sign into my spotify account, password rejected every time",
    "@SpotifyCares why does spotify say my password is incorrect when I just reset it",
    "spotify login broken?? it says wrong password @SpotifyCares",
]
UNRELATED = [
    "@SpotifyCares I was charged twice for premium this month, I want a refund",
    "@SpotifyCares love the new discover weekly, great picks this time",
    "@SpotifyCares how do I change the country on my account? moved to Germany",
    "@SpotifyCares my student discount verification email never arrived",
]


def clusters(session, account_id):
    return list(
        session.execute(select(SurgeCluster).where(SurgeCluster.account_id == account_id)).scalars()
    )


def members(cluster) -> set[int]:
    return {int(e[1]) for e in cluster.recent}


def test_paraphrases_join_one_cluster_and_unrelated_posts_stay_apart(session, settings):
    account = make_account(session, "SpotifyCares")
    texts = LOGIN + UNRELATED
    times = [T0 + timedelta(minutes=i) for i in range(len(texts))]
    posts = observed(session, account, texts, times)
    observe(session=session, posts=posts, settings=settings, now=times[-1])
    session.commit()
    login_ids = {p.post_id for p in posts[: len(LOGIN)]}
    (login,) = [c for c in clusters(session, account.id) if members(c) & login_ids]
    assert members(login) == login_ids
    assert login.size == len(LOGIN)
    assert login.topics == {"security": len(LOGIN)}
    assert {"password", "spotify"} <= set(login.keywords)
    others = [c for c in clusters(session, account.id) if c is not login]
    assert len(others) >= 3  # the four unrelated posts: at most one pair may share a cluster
    assert all(not members(c) & login_ids for c in others)


def test_another_session_continues_the_stored_clusters(session, settings, engine):
    from sqlalchemy.orm import sessionmaker

    account = make_account(session, "SpotifyCares")
    times = [T0 + timedelta(minutes=i) for i in range(len(LOGIN))]
    posts = observed(session, account, LOGIN, times)
    observe(session=session, posts=posts[:3], settings=settings, now=times[2])
    session.commit()
    with sessionmaker(engine)() as other:
        observe(session=other, posts=posts[3:], settings=settings, now=times[-1])
        other.commit()
    session.expire_all()
    (cluster,) = clusters(session, account.id)
    assert cluster.size == len(LOGIN)
    assert session.get(SurgeAccount, account.id).version == 2
    # A post handed over twice (a redelivered task) is counted once.
    observe(session=session, posts=posts[-1:], settings=settings, now=times[-1])
    assert clusters(session, account.id)[0].size == len(LOGIN)


def test_an_unusable_embedding_is_skipped_and_the_rest_clustered(session, settings):
    account = make_account(session, "SpotifyCares")
    posts = observed(session, account, LOGIN[:2], [T0, T0 + timedelta(minutes=1)])
    broken = ObservedPost(posts[0].post_id + 1000, account.id, T0, np.zeros(384), "other")
    observe(session=session, posts=[posts[0], broken, posts[1]], settings=settings, now=T0)
    (cluster,) = clusters(session, account.id)
    assert members(cluster) == {posts[0].post_id, posts[1].post_id}


def test_clusters_expire_and_stay_within_the_cap(session, settings):
    from socialcare.surge.detector import SurgeConfig

    config = SurgeConfig(max_clusters=3, cluster_ttl=timedelta(hours=1))
    account = make_account(session, "SpotifyCares")
    texts = UNRELATED
    times = [T0 + timedelta(minutes=i) for i in range(len(texts))]
    posts = observed(session, account, texts, times)
    observe(session=session, posts=posts, settings=settings, now=times[-1], config=config)
    assert len(clusters(session, account.id)) <= 3
    later = observed(session, account, LOGIN[:1], [T0 + timedelta(hours=3)])
    observe(session=session, posts=later, settings=settings, now=later[0].created_at, config=config)
    (left,) = clusters(session, account.id)
    assert members(left) == {later[0].post_id}
