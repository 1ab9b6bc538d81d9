"""Reading a policy file: inheritance, versions, and every error with its TOML path."""

from __future__ import annotations

import pytest
from policy_helpers import EXAMPLE, policy

from worker.policy import (
    BUILTIN,
    PolicyFileError,
    ProfileSettings,
    builtin_policy,
    load_policy_file,
    profile_version,
)


def errors_of(text: str) -> list[str]:
    with pytest.raises(PolicyFileError) as info:
        policy(text)
    return [str(issue) for issue in info.value.issues]


def test_the_example_file_validates() -> None:
    example = load_policy_file(EXAMPLE)
    assert set(example.tenants) == {"kids", "adult-forum"}
    kids = example.tenants["kids"].settings
    assert kids.category_thresholds == {"S1": 0.10, "S4": 0.05, "S10": 0.10}
    assert kids.review_band == [0.15, 0.30]
    assert kids.on_error == "block" and not kids.allow_event_policy
    forum = example.tenants["adult-forum"].settings
    assert forum.mode == "observe" and forum.audit_sample_rate == 0.01
    assert example.tenants["kids"].name == "tenants.kids"


def test_tenants_override_defaults_key_by_key_and_whole() -> None:
    loaded = policy(
        """
        [defaults]
        unsafe_threshold = 0.4
        category_thresholds = { S1 = 0.2, S2 = 0.3 }
        mode = "observe"
        [tenants.a]
        category_thresholds = { S3 = 0.1 }
        [tenants.b]
        """
    )
    a = loaded.tenants["a"].settings
    assert a.unsafe_threshold == 0.4  # inherited
    assert a.mode == "observe"
    assert a.category_thresholds == {"S3": 0.1}  # a table is replaced, not merged
    assert loaded.tenants["b"].settings == loaded.defaults.settings
    assert loaded.tenants["b"].version == loaded.defaults.version  # same settings, same version
    assert loaded.tenants["a"].version != loaded.defaults.version


def test_defaults_of_the_defaults_are_todays_behaviour() -> None:
    loaded = policy("", unsafe_threshold=0.7)
    assert loaded.defaults.settings == ProfileSettings(unsafe_threshold=0.7)
    assert not loaded.tenants and not loaded.require_known_tenant
    builtin = builtin_policy(0.7).defaults
    assert builtin.name == BUILTIN
    assert builtin.version == loaded.defaults.version
    assert builtin.settings.review_band is None and builtin.settings.audit_sample_rate == 0


def test_version_is_sha256_of_canonical_settings() -> None:
    one = ProfileSettings(
        category_thresholds={"S1": 0.1, "S2": 0.2}, excluded_category_keys=["S7", "S3"]
    )
    two = ProfileSettings(
        category_thresholds={"S2": 0.2, "S1": 0.1}, excluded_category_keys=["S3", "S7"]
    )
    assert profile_version(one) == profile_version(two)
    assert len(profile_version(one)) == 64
    # The category list's order is what the prompt renders: it changes the version.
    first = ProfileSettings(categories={"S1": "a.", "S2": "b."})
    swapped = ProfileSettings(categories={"S2": "b.", "S1": "a."})
    assert profile_version(first) != profile_version(swapped)
    assert profile_version(ProfileSettings(unsafe_threshold=0.5)) != profile_version(
        ProfileSettings(unsafe_threshold=0.51)
    )


def test_every_error_is_reported_at_once_with_its_path() -> None:
    found = errors_of(
        """
        [defaults]
        mode = "shadow"
        unsafe_threshold = "0.5"
        colour = "red"
        [tenants.kids]
        require_known_tenant = true
        category_thresholds = { S99 = 0.1, X1 = 0.2, S1 = 1.5 }
        review_band = [0.5, 0.4]
        audit_sample_rate = 2
        [tenants."odd.id"]
        excluded_category_keys = ["S1","S2","S3","S4","S5","S6","S7","S8","S9","S10","S11","S12","S13"]
        [tenants.list]
        review_band = [0.1]
        categories = { S1 = "Violence.", S2 = "" }
        [extra]
        """
    )
    assert sorted(found) == sorted(
        [
            "extra: unknown table (expected [defaults], [tenants.<id>])",
            "defaults.mode: Input should be 'enforce' or 'observe'",
            "defaults.unsafe_threshold: Input should be a valid number",
            "defaults.colour: unknown key",
            "tenants.kids.require_known_tenant: only allowed in [defaults]",
            "tenants.kids.category_thresholds.X1: not a category key (S1, S2, ...)",
            "tenants.kids.category_thresholds.S1: Input should be less than or equal to 1",
            "tenants.kids.category_thresholds.S99: unknown category key (not in S1-S14)",
            "tenants.kids.review_band: needs low < high",
            "tenants.kids.audit_sample_rate: Input should be less than or equal to 1",
            'tenants."odd.id".excluded_category_keys: excludes every category of the list',
            "tenants.list.review_band: List should have at least 2 items after validation, not 1",
            "tenants.list.categories.S2: String should have at least 1 character",
        ]
    )


def test_category_keys_are_checked_against_the_profiles_own_list() -> None:
    found = errors_of(
        """
        [tenants.narrow]
        categories = { S1 = "Violence.", S2 = "Fraud." }
        excluded_category_keys = ["S5"]
        category_thresholds = { S3 = 0.2 }
        """
    )
    assert found == [
        "tenants.narrow.category_thresholds.S3: unknown category key "
        "(not in this profile's categories)",
        "tenants.narrow.excluded_category_keys: unknown category key S5 "
        "(not in this profile's categories)",
    ]
    # S14 exists in the 8B template: a threshold on it is fine.
    assert policy("[defaults]\ncategory_thresholds = { S14 = 0.3 }").defaults
    # Inherited keys that a tenant's own list lacks never apply: not an error.
    inherited = policy(
        """
        [defaults]
        excluded_category_keys = ["S13"]
        category_thresholds = { S10 = 0.1 }
        [tenants.narrow]
        categories = { S1 = "Violence." }
        """
    )
    assert inherited.tenants["narrow"].settings.category_thresholds == {"S10": 0.1}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[defaults\n", "not TOML"),
        (b"\xff\xfe", "not UTF-8"),
        (b"defaults = 3", "defaults: must be a table"),
        (b"tenants = 3", "tenants: must be a table"),
        (b"[tenants]\nkids = 3", "tenants.kids: must be a table"),
    ],
)
def test_files_that_are_not_policies(data: bytes, message: str) -> None:
    from worker.policy import parse_policy

    with pytest.raises(PolicyFileError, match=message):
        parse_policy(data, source="x.toml")


def test_a_missing_file_is_one_clear_error(tmp_path: object) -> None:
    with pytest.raises(PolicyFileError, match="cannot read"):
        load_policy_file(f"{tmp_path}/nope.toml")


def test_require_known_tenant_is_read_from_defaults() -> None:
    assert policy("[defaults]\nrequire_known_tenant = true").require_known_tenant
