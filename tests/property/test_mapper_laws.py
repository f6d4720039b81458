"""The Mapper law (`kbcore.sync.mapper`): `to_consumer(gvr, to_provider(gvr, k)) == k`.

A mapper maps keys only: it never changes scope, and `to_consumer` refuses (None) provider keys
it could not have produced, so a provider event for a foreign object never wakes a consumer key.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbcore.objects import GVR, ObjectKey
from kbcore.sync.mapper import IDENTITY, Mapper, NamespacePrefix

# Cheap draws: the full budget of the loaded profile (tests/property/conftest.py), at least 100.
LAW = settings(
    max_examples=max(100, settings().max_examples),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

segments = st.one_of(
    st.sampled_from(["", "team-a", "consumer-7-", "p-", "p-p-"]), st.text(max_size=12)
)
keys_ = st.builds(ObjectKey, segments, segments)
gvrs = st.builds(
    GVR,
    st.sampled_from(["", "example.org", "apps"]),
    st.sampled_from(["v1", "v1alpha1"]),
    st.sampled_from(["widgets", "gadgets", "secrets"]),
)
prefixes = st.one_of(st.sampled_from(["consumer-7-", "p-", "x"]), st.text(min_size=1, max_size=6))
mappers: st.SearchStrategy[Mapper] = st.one_of(st.just(IDENTITY), prefixes.map(NamespacePrefix))


@LAW
@given(mappers, gvrs, keys_)
def test_round_trip(mapper: Mapper, gvr: GVR, key: ObjectKey) -> None:
    assert mapper.to_consumer(gvr, mapper.to_provider(gvr, key)) == key


@LAW
@given(mappers, gvrs, keys_)
def test_scope_is_kept_and_names_are_not_mapped(mapper: Mapper, gvr: GVR, key: ObjectKey) -> None:
    provider_key = mapper.to_provider(gvr, key)
    assert bool(provider_key.namespace) == bool(key.namespace)
    assert provider_key.name == key.name


@LAW
@given(mappers, gvrs, keys_)
def test_to_consumer_inverts_to_provider_where_defined(
    mapper: Mapper, gvr: GVR, provider_key: ObjectKey
) -> None:
    """Whatever `to_consumer` accepts maps back to the same provider key: it is a true inverse
    on the image of `to_provider`, and refuses everything else."""
    consumer_key = mapper.to_consumer(gvr, provider_key)
    if consumer_key is not None:
        assert mapper.to_provider(gvr, consumer_key) == provider_key


@LAW
@given(prefixes, gvrs, keys_)
def test_prefix_refuses_keys_it_did_not_produce(prefix: str, gvr: GVR, key: ObjectKey) -> None:
    mapper = NamespacePrefix(prefix)
    produced = bool(key.namespace) and key.namespace.startswith(prefix) and key.namespace != prefix
    if key.namespace and not produced:
        assert mapper.to_consumer(gvr, key) is None
    else:
        assert mapper.to_consumer(gvr, key) is not None


@LAW
@given(prefixes, gvrs, keys_, keys_)
def test_prefix_is_injective(prefix: str, gvr: GVR, a: ObjectKey, b: ObjectKey) -> None:
    mapper = NamespacePrefix(prefix)
    if a != b:
        assert mapper.to_provider(gvr, a) != mapper.to_provider(gvr, b)


def test_examples() -> None:
    gvr = GVR("example.org", "v1", "widgets")
    m = NamespacePrefix("consumer-7-")
    assert m.to_provider(gvr, ObjectKey("team-a", "w1")) == ObjectKey("consumer-7-team-a", "w1")
    assert m.to_consumer(gvr, ObjectKey("consumer-7-team-a", "w1")) == ObjectKey("team-a", "w1")
    assert m.to_consumer(gvr, ObjectKey("team-a", "w1")) is None
    assert m.to_consumer(gvr, ObjectKey("consumer-7-", "w1")) is None
    assert m.to_provider(gvr, ObjectKey("", "g1")) == ObjectKey("", "g1")
    assert m.to_consumer(gvr, ObjectKey("", "g1")) == ObjectKey("", "g1")
    assert IDENTITY.to_provider(gvr, ObjectKey("a", "b")) == ObjectKey("a", "b")
    assert IDENTITY.to_consumer(gvr, ObjectKey("a", "b")) == ObjectKey("a", "b")
