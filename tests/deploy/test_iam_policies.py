"""deploy/iam/: each tier's policy allows what its code calls, and nothing else.

moto checks no permissions, so a missing grant would first show on real AWS as an
AccessDenied deep in a worker's loop. These tests read the code instead (see
`tests/aws_calls.py`) and compare, then check the conditions that keep each tier to its
own instances, queues and key prefixes, on policies rendered with the default settings
and with IRAS's records in a state bucket of their own.
"""

from __future__ import annotations

import ast
import json
import re
import string
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from iras.aws import AwsClients, MessageQueue, ObjectStore
from iras.config import Settings
from iras.messages import input_key, job_key, model_key, result_key
from iras.scaler.fleet import HEARTBEAT_TAG, ROLE, ROLE_TAG
from iras.web.gateway import Gateway
from iras.web.reply_claim import claim_key
from tests.aws_calls import (
    CLIENT_NAMES,
    INTERFACES,
    AwsCall,
    UnknownAwsCall,
    calls_in,
    parse,
    reachable_calls,
    source_modules,
)
from tests.deploy.iam_actions import iam_actions

POLICY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "iam"

#: Each policy file and the packages whose code runs under it (missing ones are skipped).
TIERS = {
    "web-tier.json": ("iras.web", "iras.scaler", "iras.cli.gateway"),
    "app-tier.json": ("iras.worker", "iras.cli.worker"),
    "provisioner.json": ("iras.cli.provision",),
    "teardown.json": ("iras.cli.teardown",),
}

#: Each placeholder and the setting it stands for (None: not an IRAS setting).
PLACEHOLDERS = {
    "Region": "region",
    "AccountId": None,
    "InputBucket": "input_bucket",
    "OutputBucket": "output_bucket",
    "StateBucket": "records_bucket",  # IRAS_STATE_BUCKET, else the output bucket
    "ResultsPrefix": "results_prefix",
    "RequestQueue": "request_queue",
    "DeadLetterQueue": "dead_letter_queue",
    "ReplyQueuePrefix": "reply_queue_prefix",
    "LeaderLeaseKey": "leader_lease_key",
    "AutoScalingGroup": "asg_name",
    "AppTierRole": None,
    "LaunchTemplateId": None,  # the id of the template named IRAS_WORKER_LAUNCH_TEMPLATE
    "WorkerInstanceType": "worker_instance_type",
}

#: Placeholders that stand for a derived setting: the setting that sets it, and the
#: placeholder whose value it takes when that setting is unset (the README's default).
DERIVED = {"records_bucket": ("state_bucket", "OutputBucket")}

#: IAM's own policy variables, which AWS fills in per request: written `$${...}` in the
#: files so that `string.Template` leaves them as `${...}`.
IAM_POLICY_VARIABLES = frozenset({"ec2:InstanceID"})

#: Actions EC2 and Auto Scaling authorise on no resource but "*".
UNSCOPED_ACTIONS = frozenset(
    {
        "ec2:DescribeInstances",
        "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeAvailabilityZones",
        "autoscaling:DescribeAutoScalingGroups",
    }
)

#: What a tier may do to an Auto Scaling group: on the workers' group only, by its ARN.
GROUP_CHANGES = frozenset(
    {
        "autoscaling:CreateAutoScalingGroup",
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:CreateOrUpdateTags",
        "autoscaling:DeleteAutoScalingGroup",
        "autoscaling:SetDesiredCapacity",
        "autoscaling:SetInstanceProtection",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    }
)
WORKERS_GROUP = (
    "arn:aws:autoscaling:${Region}:${AccountId}:autoScalingGroup:*:"
    "autoScalingGroupName/${AutoScalingGroup}"
)

#: Actions that must be conditioned on the app-tier tag of the instance they act on.
INSTANCE_CHANGES = frozenset({"ec2:TerminateInstances", "ec2:StartInstances", "ec2:StopInstances"})

#: The condition that keeps a tier's hands off every instance but app-tier ones.
APP_TIER_ONLY = {"StringEquals": {f"ec2:ResourceTag/{ROLE_TAG}": ROLE}}

#: The condition that keeps a worker's hands off every instance but the one it runs on: the
#: instance the request comes from is the instance it acts on (as written in the files).
OWN_INSTANCE_ONLY = {
    "ArnEquals": {
        "ec2:SourceInstanceARN": "arn:aws:ec2:${Region}:${AccountId}:instance/$${ec2:InstanceID}"
    }
}

DEFAULTS = Settings.model_construct()  # the field defaults, without reading the environment
#: IRAS's records (results, manifests, the lease) in a bucket apart from the name objects.
SEPARATE = Settings.model_construct(state_bucket="iras-state")


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def raw_policy(name: str) -> dict[str, Any]:
    return json.loads((POLICY_DIR / name).read_text(encoding="utf-8"))


def rendered_policy(name: str, settings: Settings = DEFAULTS) -> dict[str, Any]:
    """The policy with every placeholder replaced by the setting it stands for."""
    values = {
        var: str(getattr(settings, field)) if field else var.lower()
        for var, field in PLACEHOLDERS.items()
    }
    text = string.Template((POLICY_DIR / name).read_text(encoding="utf-8")).substitute(values)
    return json.loads(text)


def statements(policy: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from policy["Statement"]


def granted(policy: dict[str, Any]) -> set[str]:
    return {a for s in statements(policy) if s["Effect"] == "Allow" for a in as_list(s["Action"])}


def allows(policy: dict[str, Any], action: str, arn: str) -> bool:
    """Whether `policy` allows `action` on `arn`, conditions aside (they are tested apart)."""

    def matches(statement: dict[str, Any]) -> bool:
        return action in as_list(statement["Action"]) and any(
            fnmatchcase(arn, pattern) for pattern in as_list(statement["Resource"])
        )

    effects = {s["Effect"] for s in statements(policy) if matches(s)}
    return effects == {"Allow"}


def tier_calls(name: str) -> list[AwsCall]:
    return reachable_calls(TIERS[name])


def needed(calls: list[AwsCall]) -> dict[str, list[str]]:
    """IAM action -> the call sites that need it."""
    found: dict[str, list[str]] = {}
    for call in calls:
        for action in iam_actions(call):
            found.setdefault(action, []).append(f"{call.operation} at {call.where}")
    return found


# --- shape -------------------------------------------------------------------------------


def test_deploy_iam_holds_exactly_the_known_policies() -> None:
    assert sorted(p.name for p in POLICY_DIR.glob("*.json")) == sorted(TIERS)


@pytest.mark.parametrize("name", sorted(TIERS))
def test_policy_has_iam_shape(name: str) -> None:
    policy = raw_policy(name)
    assert set(policy) == {"Version", "Statement"}
    assert policy["Version"] == "2012-10-17"
    assert isinstance(policy["Statement"], list) and policy["Statement"]
    sids = [s.get("Sid") for s in statements(policy)]
    assert len(set(sids)) == len(sids), f"{name}: duplicate Sids"
    for statement in statements(policy):
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, statement
        assert statement["Effect"] in {"Allow", "Deny"}
        assert re.fullmatch(r"[A-Za-z0-9]+", statement.get("Sid", "x")), statement["Sid"]
        assert as_list(statement["Action"]) and as_list(statement["Resource"]), statement
        assert isinstance(statement.get("Condition", {}), dict)


@pytest.mark.parametrize("name", sorted(TIERS))
def test_no_wildcard_actions(name: str) -> None:
    for action in granted(raw_policy(name)):
        assert re.fullmatch(r"[a-z0-9]+:[A-Za-z0-9]+", action), f"{name}: {action!r}"


@pytest.mark.parametrize("name", sorted(TIERS))
def test_resources_are_scoped_arns_with_no_account_number(name: str) -> None:
    for statement in statements(raw_policy(name)):
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(as_list(statement["Action"])) <= UNSCOPED_ACTIONS, statement
                continue
            partition, service, region, account = resource.split(":")[1:5]
            assert partition == "aws" and service in {"s3", "sqs", "ec2", "iam", "autoscaling"}
            assert region in {"", "${Region}"}, resource
            assert account in {"", "${AccountId}"}, resource


@pytest.mark.parametrize("name", sorted(TIERS))
def test_placeholders_are_the_documented_ones(name: str) -> None:
    used = set(re.findall(r"\$\{(\w+)\}", (POLICY_DIR / name).read_text(encoding="utf-8")))
    assert used <= set(PLACEHOLDERS), used - set(PLACEHOLDERS)
    rendered_policy(name)  # every placeholder substitutes and the result is still JSON


def test_readme_documents_each_placeholder_with_its_setting_and_default() -> None:
    readme = (POLICY_DIR / "README.md").read_text(encoding="utf-8")
    for var, field in PLACEHOLDERS.items():
        rows = [line for line in readme.splitlines() if line.startswith(f"| `${{{var}}}`")]
        assert len(rows) == 1, f"deploy/iam/README.md needs one table row for ${{{var}}}"
        if field:
            setting, fallback = DERIVED.get(field, (field, None))
            assert f"`IRAS_{setting.upper()}`" in rows[0], rows[0]
            assert f"`{getattr(DEFAULTS, field)}`" in rows[0], rows[0]
            if fallback:
                assert f"`${{{fallback}}}`" in rows[0], rows[0]


# --- the code's calls against the policies -----------------------------------------------


@pytest.mark.parametrize("name", sorted(TIERS))
def test_policy_allows_every_call_of_its_tier(name: str) -> None:
    missing = needed(tier_calls(name))
    for action in granted(raw_policy(name)):
        missing.pop(action, None)
    assert not missing, f"deploy/iam/{name} lacks actions the code calls: {missing}"


@pytest.mark.parametrize("name", sorted(TIERS))
def test_policy_allows_nothing_its_tier_does_not_call(name: str) -> None:
    unused = granted(raw_policy(name)) - set(needed(tier_calls(name)))
    assert not unused, f"deploy/iam/{name} grants actions no code of its tier calls: {unused}"


def test_reading_finds_each_tiers_characteristic_calls() -> None:
    """Guards the reading itself: if it went blind, the comparisons above would pass vacuously."""
    operations = {name: {c.operation for c in tier_calls(name)} for name in TIERS}
    assert {
        "RunInstances",
        "CreateQueue",
        "PutObject",
        "SendMessageBatch",
        "SetDesiredCapacity",
    } <= operations["web-tier.json"]
    assert {"ReceiveMessage", "GetObject", "TerminateInstances", "SetInstanceProtection"} <= (
        operations["app-tier.json"]
    )
    assert {"CreateBucket", "SetQueueAttributes", "CreateAutoScalingGroup"} <= operations[
        "provisioner.json"
    ]
    assert "DeleteAutoScalingGroup" in operations["teardown.json"]
    assert "CreateBucket" not in operations["web-tier.json"] | operations["app-tier.json"]


def test_every_aws_call_in_the_source_belongs_to_a_tier() -> None:
    """A call site no tier reaches would be covered by no policy: likely a new entry point."""
    everywhere = {c for m in source_modules() for u in parse(m).units.values() for c in u.calls}
    reached = {call for name in TIERS for call in tier_calls(name)}
    assert everywhere - reached == set()


def test_clients_are_the_ones_the_reading_knows() -> None:
    assert tuple(AwsClients.__dataclass_fields__) == CLIENT_NAMES


@pytest.mark.parametrize(
    ("name", "interface"), [("objects", ObjectStore), ("messages", MessageQueue)]
)
def test_the_reading_knows_each_method_of_the_interfaces(name: str, interface: type) -> None:
    """A method added to an interface needs its operation in INTERFACES, or calls to it
    would fail the reading (and a policy would never learn of it)."""
    methods = {member for member in vars(interface) if not member.startswith("_")}
    assert set(INTERFACES[name][1]) == methods


def test_interface_calls_are_read_as_the_operations_they_make() -> None:
    code = "aws.objects.put(b, k, body)\nself._messages.depth(url)\nmessages.receive(url)"
    calls = {(c.service, c.operation) for c in calls_in(ast.parse(code), "example.py")}
    assert calls == {("s3", "PutObject"), ("sqs", "GetQueueAttributes"), ("sqs", "ReceiveMessage")}


@pytest.mark.parametrize(
    "code",
    [
        "sqs.send_mesage(QueueUrl=url)",  # a typo, or a new botocore name
        "client.receive_message(QueueUrl=url)",  # a client under a name the reading ignores
        "aws.messages.receive_message(QueueUrl=url)",  # botocore's name on the interface
        "self._objects.put_object(Bucket=b)",
        "aws.objects.get_paginator('list_objects_v2')",  # interfaces have no paginators
        "self._ec2.get_paginator(operation)",  # a paginator it cannot name
    ],
)
def test_reading_fails_loudly_on_calls_it_cannot_place(code: str) -> None:
    with pytest.raises(UnknownAwsCall):
        list(calls_in(ast.parse(code), "example.py"))


def test_s3_operation_without_a_known_iam_action_fails_loudly() -> None:
    (call,) = calls_in(ast.parse("aws.s3.get_bucket_tagging(Bucket=b)"), "example.py")
    with pytest.raises(UnknownAwsCall, match="S3_ACTIONS"):
        iam_actions(call)


# --- conditions ----------------------------------------------------------------------------


def statements_with(name: str, actions: set[str] | frozenset[str]) -> list[dict[str, Any]]:
    return [s for s in statements(raw_policy(name)) if actions & set(as_list(s["Action"]))]


@pytest.mark.parametrize("name", ["web-tier.json", "app-tier.json", "teardown.json"])
def test_instance_changes_need_the_app_tier_tag(name: str) -> None:
    found = statements_with(name, INSTANCE_CHANGES)
    assert found, f"{name} should allow changing app-tier instances"
    for statement in found:
        expected = (
            {**APP_TIER_ONLY, **OWN_INSTANCE_ONLY} if name == "app-tier.json" else APP_TIER_ONLY
        )
        assert statement["Condition"] == expected, statement
        assert all(r.endswith(":instance/*") for r in as_list(statement["Resource"]))


def test_launches_must_tag_the_instance_app_tier() -> None:
    found = 0
    for statement in statements_with("web-tier.json", {"ec2:RunInstances"}):
        for resource in as_list(statement["Resource"]):
            if ":instance/" in resource:
                found += 1
                tags = statement["Condition"]["StringEquals"]
                assert tags[f"aws:RequestTag/{ROLE_TAG}"] == ROLE, statement
    assert found == 1


def test_tags_only_at_launch() -> None:
    found = statements_with("web-tier.json", {"ec2:CreateTags"})
    assert found
    for statement in found:
        assert statement["Condition"] == {"StringEquals": {"ec2:CreateAction": "RunInstances"}}


@pytest.mark.parametrize("name", ["web-tier.json", "provisioner.json"])
def test_pass_role_only_the_app_tier_role_to_ec2(name: str) -> None:
    """The gateway passes it at each launch, the provisioner as it makes the group that
    launches with it."""
    (statement,) = statements_with(name, {"iam:PassRole"})
    assert as_list(statement["Resource"]) == ["arn:aws:iam::${AccountId}:role/${AppTierRole}"]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


@pytest.mark.parametrize("name", sorted(TIERS))
def test_auto_scaling_changes_only_the_workers_group(name: str) -> None:
    for statement in statements_with(name, GROUP_CHANGES):
        assert as_list(statement["Resource"]) == [WORKERS_GROUP], statement


def test_heartbeat_tags_only_the_heartbeat_on_app_tier_instances() -> None:
    """ForAllValues holds for a request naming no tag at all, and DeleteTags without tags
    removes every tag: the Null test requires the request to name its tags."""
    (statement,) = statements_with("app-tier.json", {"ec2:CreateTags", "ec2:DeleteTags"})
    assert statement["Condition"] == {
        **APP_TIER_ONLY,
        **OWN_INSTANCE_ONLY,
        "ForAllValues:StringEquals": {"aws:TagKeys": [HEARTBEAT_TAG]},
        "Null": {"aws:TagKeys": "false"},
    }


def test_reply_queues_are_created_and_deleted_by_prefix_only() -> None:
    for statement in statements_with("web-tier.json", {"sqs:CreateQueue", "sqs:DeleteQueue"}):
        for resource in as_list(statement["Resource"]):
            assert resource.endswith(":${ReplyQueuePrefix}-*"), resource


def test_get_object_comes_with_list_bucket_on_the_same_bucket() -> None:
    """Else a missing key answers 403, which the worker and the lookup take for a failure."""
    for name in TIERS:
        policy = raw_policy(name)
        for statement in statements_with(name, {"s3:GetObject"}):
            for resource in as_list(statement["Resource"]):
                bucket = resource.split("/", 1)[0]
                assert allows(policy, "s3:ListBucket", bucket), f"{name}: {bucket}"


# --- what each tier reaches, with the default settings ----------------------------------------


def s3_arn(bucket: str, key: str = "") -> str:
    return f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else "")


def sqs_arn(queue: str) -> str:
    return f"arn:aws:sqs:{DEFAULTS.region}:accountid:{queue}"


def reply_queue() -> str:
    """A reply queue named as a gateway names its own."""
    gateway = SimpleNamespace(settings=DEFAULTS, id="0123abcd")
    return str(Gateway.reply_queue_name.fget(gateway))


INPUT, OUTPUT, RECORDS = DEFAULTS.input_bucket, DEFAULTS.output_bucket, DEFAULTS.records_bucket
UPLOAD = s3_arn(INPUT, input_key("r1"))
RESULT = s3_arn(RECORDS, result_key(DEFAULTS, "r1"))
MANIFEST = s3_arn(RECORDS, job_key("j1"))
NAME_OBJECT = s3_arn(OUTPUT, "cat")
REQUESTS, DLQ = sqs_arn(DEFAULTS.request_queue), sqs_arn(DEFAULTS.dead_letter_queue)
REPLIES = sqs_arn(reply_queue())


def group_arn(name: str) -> str:
    uuid = "0166eaa2-aa2b-4dd3-a484-681f3987857a"
    return f"arn:aws:autoscaling:{DEFAULTS.region}:accountid:autoScalingGroup:{uuid}:autoScalingGroupName/{name}"


LEASE = s3_arn(RECORDS, DEFAULTS.leader_lease_key)
MODEL_RECORD = s3_arn(RECORDS, model_key("defects", "3"))
TEMPLATE = f"arn:aws:ec2:{DEFAULTS.region}:accountid:launch-template/launchtemplateid"
OTHER_TEMPLATE = f"arn:aws:ec2:{DEFAULTS.region}:accountid:launch-template/lt-0123456789abcdef0"
#: The instance a worker's request comes from, as the rendered policies name it.
OWN_INSTANCE = f"arn:aws:ec2:{DEFAULTS.region}:accountid:instance/${{ec2:InstanceID}}"
WORKERS, OTHER_GROUP = group_arn(DEFAULTS.asg_name), group_arn("someone-elses")


@pytest.mark.parametrize(
    ("name", "action", "arn", "allowed"),
    [
        ("web-tier.json", "s3:PutObject", UPLOAD, True),
        ("web-tier.json", "s3:PutObject", MANIFEST, True),
        ("web-tier.json", "s3:PutObject", RESULT, True),  # those the result cache answers
        ("web-tier.json", "s3:GetObject", RESULT, True),
        ("web-tier.json", "s3:GetObject", MANIFEST, True),
        ("web-tier.json", "s3:GetObject", UPLOAD, False),
        ("web-tier.json", "sqs:SendMessage", REQUESTS, True),
        ("web-tier.json", "sqs:SendMessage", REPLIES, True),  # a follower's upload reports
        ("web-tier.json", "s3:PutObject", LEASE, True),
        # IRAS_REPLY_QUEUE's claim (iras.web.reply_claim), beside the lease.
        ("web-tier.json", "s3:PutObject", s3_arn(RECORDS, claim_key("q")), True),
        ("web-tier.json", "s3:GetObject", s3_arn(RECORDS, claim_key("q")), True),
        ("app-tier.json", "s3:PutObject", s3_arn(RECORDS, claim_key("q")), False),
        ("web-tier.json", "s3:GetObject", LEASE, True),
        ("app-tier.json", "s3:GetObject", LEASE, True),  # before an idle exit
        # A worker's record of its model, which GET /v1/models lists (iras.web.fleet_models).
        ("app-tier.json", "s3:PutObject", MODEL_RECORD, True),
        ("web-tier.json", "s3:GetObject", MODEL_RECORD, True),
        ("web-tier.json", "s3:PutObject", MODEL_RECORD, False),
        ("app-tier.json", "s3:GetObject", MODEL_RECORD, False),
        ("web-tier.json", "sqs:GetQueueAttributes", DLQ, True),
        ("web-tier.json", "sqs:CreateQueue", REPLIES, True),
        ("web-tier.json", "sqs:DeleteQueue", REPLIES, True),
        ("web-tier.json", "sqs:DeleteQueue", REQUESTS, False),
        ("web-tier.json", "sqs:DeleteQueue", DLQ, False),
        ("web-tier.json", "sqs:ReceiveMessage", REPLIES, True),
        ("web-tier.json", "sqs:ReceiveMessage", REQUESTS, False),
        ("app-tier.json", "s3:GetObject", UPLOAD, True),
        ("app-tier.json", "s3:GetObject", RESULT, False),
        ("app-tier.json", "s3:PutObject", RESULT, True),
        ("app-tier.json", "s3:PutObject", NAME_OBJECT, True),
        ("app-tier.json", "s3:PutObject", UPLOAD, False),
        ("app-tier.json", "s3:PutObject", MANIFEST, False),  # its owner field authorises reads
        ("app-tier.json", "s3:PutObject", LEASE, False),  # a worker must not elect a scaler
        ("app-tier.json", "sqs:ReceiveMessage", REQUESTS, True),
        ("app-tier.json", "sqs:DeleteMessage", REQUESTS, True),
        ("app-tier.json", "sqs:DeleteMessage", REPLIES, False),
        ("app-tier.json", "sqs:SendMessage", REPLIES, True),
        ("app-tier.json", "sqs:SendMessage", REQUESTS, False),  # a forged reply-to cannot loop
        ("app-tier.json", "sqs:SendMessage", DLQ, False),
        ("provisioner.json", "s3:CreateBucket", s3_arn(INPUT), True),
        ("provisioner.json", "s3:CreateBucket", s3_arn("someone-elses"), False),
        ("provisioner.json", "sqs:SetQueueAttributes", REQUESTS, True),
        ("provisioner.json", "sqs:SetQueueAttributes", DLQ, True),
        ("provisioner.json", "sqs:CreateQueue", REPLIES, False),
        ("teardown.json", "s3:DeleteBucket", s3_arn(OUTPUT), True),
        ("teardown.json", "s3:DeleteObjectVersion", RESULT, True),
        ("teardown.json", "s3:DeleteBucket", s3_arn("someone-elses"), False),
        ("teardown.json", "sqs:DeleteQueue", DLQ, True),
        ("teardown.json", "sqs:DeleteQueue", REPLIES, True),  # kept by gateways with fixed ids
        ("web-tier.json", "ec2:RunInstances", TEMPLATE, True),
        ("web-tier.json", "ec2:RunInstances", OTHER_TEMPLATE, False),
        ("web-tier.json", "autoscaling:SetDesiredCapacity", WORKERS, True),
        ("web-tier.json", "autoscaling:SetDesiredCapacity", OTHER_GROUP, False),
        ("web-tier.json", "autoscaling:TerminateInstanceInAutoScalingGroup", WORKERS, True),
        ("app-tier.json", "autoscaling:SetInstanceProtection", WORKERS, True),
        ("app-tier.json", "autoscaling:SetInstanceProtection", OTHER_GROUP, False),
        ("app-tier.json", "autoscaling:SetDesiredCapacity", WORKERS, False),
        ("provisioner.json", "autoscaling:CreateAutoScalingGroup", WORKERS, True),
        ("provisioner.json", "autoscaling:UpdateAutoScalingGroup", OTHER_GROUP, False),
        ("provisioner.json", "autoscaling:DeleteAutoScalingGroup", WORKERS, False),
        ("teardown.json", "autoscaling:DeleteAutoScalingGroup", WORKERS, True),
        ("teardown.json", "autoscaling:DeleteAutoScalingGroup", OTHER_GROUP, False),
    ],
)
def test_tier_reaches_its_own_resources_only(
    name: str, action: str, arn: str, allowed: bool
) -> None:
    assert allows(rendered_policy(name), action, arn) is allowed


# --- with IRAS's records in a state bucket of their own ---------------------------------------

STATE = SEPARATE.records_bucket
STATE_RESULT = s3_arn(STATE, result_key(SEPARATE, "x"))
STATE_MANIFEST = s3_arn(STATE, job_key("j"))
STATE_LEASE = s3_arn(STATE, SEPARATE.leader_lease_key)
#: Where records would sit, had they stayed in the output bucket.
OUTPUT_RESULT = s3_arn(OUTPUT, result_key(SEPARATE, "x"))
OUTPUT_MANIFEST = s3_arn(OUTPUT, job_key("j"))
OUTPUT_LEASE = s3_arn(OUTPUT, SEPARATE.leader_lease_key)


def test_the_separate_state_bucket_is_apart_from_the_output_bucket() -> None:
    """Guards the table below: with one bucket it would test nothing new."""
    assert (STATE, SEPARATE.output_bucket) == ("iras-state", OUTPUT)


@pytest.mark.parametrize(
    ("name", "action", "arn", "allowed"),
    [
        ("app-tier.json", "s3:PutObject", STATE_RESULT, True),
        ("app-tier.json", "s3:PutObject", s3_arn(OUTPUT, "cat"), True),  # the name object
        ("app-tier.json", "s3:PutObject", STATE_MANIFEST, False),
        ("app-tier.json", "s3:PutObject", STATE_LEASE, False),
        ("app-tier.json", "s3:PutObject", s3_arn(STATE, "cat"), False),  # names stay in output
        ("app-tier.json", "s3:GetObject", STATE_LEASE, True),  # before an idle exit
        ("app-tier.json", "s3:PutObject", s3_arn(STATE, model_key("defects", "3")), True),
        ("web-tier.json", "s3:GetObject", s3_arn(STATE, model_key("defects", "3")), True),
        ("web-tier.json", "s3:GetObject", s3_arn(OUTPUT, model_key("defects", "3")), False),
        ("app-tier.json", "s3:GetObject", OUTPUT_LEASE, False),
        ("app-tier.json", "s3:ListBucket", s3_arn(STATE), True),  # a missing lease is a 404
        ("web-tier.json", "s3:PutObject", STATE_MANIFEST, True),
        ("web-tier.json", "s3:GetObject", STATE_MANIFEST, True),
        ("web-tier.json", "s3:PutObject", STATE_LEASE, True),
        ("web-tier.json", "s3:GetObject", STATE_LEASE, True),
        ("web-tier.json", "s3:GetObject", STATE_RESULT, True),  # lookups and the readiness probe
        ("web-tier.json", "s3:ListBucket", s3_arn(STATE), True),  # a missing result is a 404
        ("web-tier.json", "s3:PutObject", STATE_RESULT, True),  # a cached answer's result
        ("web-tier.json", "s3:PutObject", s3_arn(OUTPUT, "cat"), True),  # and its name object
        ("web-tier.json", "s3:PutObject", s3_arn(STATE, "cat"), False),  # names stay in output
        ("web-tier.json", "s3:PutObject", s3_arn(STATE, "cache/m/1/int8/ab.json"), True),
        ("web-tier.json", "s3:GetObject", s3_arn(STATE, "cache/m/1/int8/ab.json"), True),
        ("app-tier.json", "s3:PutObject", s3_arn(STATE, "cache/m/1/int8/ab.json"), False),
        ("web-tier.json", "s3:PutObject", s3_arn(STATE, model_key("defects", "3")), False),
        ("web-tier.json", "s3:GetObject", OUTPUT_RESULT, False),
        ("web-tier.json", "s3:GetObject", s3_arn(OUTPUT, "cat"), False),
        ("provisioner.json", "s3:CreateBucket", s3_arn(STATE), True),
        ("provisioner.json", "s3:CreateBucket", s3_arn(OUTPUT), True),
        ("provisioner.json", "s3:PutBucketPublicAccessBlock", s3_arn(STATE), True),
        ("provisioner.json", "s3:PutEncryptionConfiguration", s3_arn(STATE), True),
        ("provisioner.json", "s3:ListBucket", s3_arn(STATE), True),
        ("teardown.json", "s3:ListBucketVersions", s3_arn(STATE), True),
        ("teardown.json", "s3:DeleteObject", STATE_RESULT, True),
        ("teardown.json", "s3:DeleteObjectVersion", STATE_MANIFEST, True),
        ("teardown.json", "s3:DeleteBucket", s3_arn(STATE), True),
        ("teardown.json", "s3:DeleteBucket", s3_arn(OUTPUT), True),
    ],
)
def test_tier_reaches_the_records_in_the_state_bucket(
    name: str, action: str, arn: str, allowed: bool
) -> None:
    assert allows(rendered_policy(name, SEPARATE), action, arn) is allowed


def test_a_worker_writes_results_to_the_state_bucket_only() -> None:
    """The results statement names the state bucket alone. A result-shaped key in the
    output bucket still falls under the name objects' `${OutputBucket}/*` (IAM has no
    wildcard that stops at a `/`, and a Deny on it would block results in the default,
    shared bucket); nothing reads records there."""
    policy = rendered_policy("app-tier.json", SEPARATE)
    (results,) = [s for s in statements(policy) if s.get("Sid") == "WriteResults"]
    assert as_list(results["Resource"]) == [s3_arn(STATE, f"{SEPARATE.results_prefix}*")]
    reaching = [
        s
        for s in statements(policy)
        if s["Effect"] == "Allow"
        and "s3:PutObject" in as_list(s["Action"])
        and any(fnmatchcase(OUTPUT_RESULT, r) for r in as_list(s["Resource"]))
    ]
    assert [s["Sid"] for s in reaching] == ["WriteNameObjectsAtTheBucketsTopLevel"]


def test_records_are_named_in_the_state_bucket_only() -> None:
    """Results, manifests and the lease are IRAS's records: every statement about them
    names `${StateBucket}`; `${OutputBucket}` keeps the name objects (and, for the
    provisioner and teardown, the bucket itself)."""
    records = ("${ResultsPrefix}", "jobs/", "${LeaderLeaseKey}", "models/")
    for name in TIERS:
        for statement in statements(raw_policy(name)):
            for resource in as_list(statement["Resource"]):
                if any(record in resource for record in records):
                    assert resource.startswith("arn:aws:s3:::${StateBucket}/"), (name, resource)


# --- the conditions, rendered with the default settings -----------------------------------


def rendered_statements_with(name: str, actions: set[str]) -> list[dict[str, Any]]:
    policy = rendered_policy(name)
    return [s for s in statements(policy) if actions & set(as_list(s["Action"]))]


@pytest.mark.parametrize("name", sorted(TIERS))
def test_rendering_leaves_only_iam_policy_variables(name: str) -> None:
    """`$${ec2:InstanceID}` renders as IAM's `${ec2:InstanceID}`; nothing else is left."""
    text = json.dumps(rendered_policy(name))
    assert "$$" not in text
    assert set(re.findall(r"\$\{([^}]*)\}", text)) <= IAM_POLICY_VARIABLES


def test_launches_only_from_the_workers_template() -> None:
    """Every resource of a launch is allowed only when the launch names the workers'
    template (`ec2:LaunchTemplate`), and the image only as the template gives it
    (`ec2:IsLaunchTemplateResource`): a request cannot swap in another AMI."""
    found = rendered_statements_with("web-tier.json", {"ec2:RunInstances"})
    assert found
    for statement in found:
        if as_list(statement["Resource"]) == [TEMPLATE]:
            assert "Condition" not in statement, statement
            continue
        assert statement["Condition"]["ArnEquals"] == {"ec2:LaunchTemplate": TEMPLATE}, statement
        if any(":image/" in r for r in as_list(statement["Resource"])):
            assert as_list(statement["Resource"]) == [f"arn:aws:ec2:{DEFAULTS.region}::image/*"]
            assert statement["Condition"]["Bool"] == {"ec2:IsLaunchTemplateResource": "true"}


def test_launches_only_the_configured_instance_type() -> None:
    """The gateway launches IRAS_WORKER_INSTANCE_TYPE (the template's type) and nothing
    else; with IRAS_FLEET=asg, Auto Scaling launches the other types with its own role."""
    (statement,) = [
        s
        for s in rendered_statements_with("web-tier.json", {"ec2:RunInstances"})
        if any(":instance/" in r for r in as_list(s["Resource"]))
    ]
    assert statement["Condition"]["StringEquals"] == {
        f"aws:RequestTag/{ROLE_TAG}": ROLE,
        "ec2:InstanceType": [DEFAULTS.worker_instance_type],
    }
    assert statement["Condition"]["ArnEquals"] == {"ec2:LaunchTemplate": TEMPLATE}


def test_a_worker_ends_and_tags_only_its_own_instance() -> None:
    """`ec2:SourceInstanceARN` (the instance whose role credentials sign the request)
    must be the ARN of the instance acted on, built from its `ec2:InstanceID`."""
    actions = set(INSTANCE_CHANGES) | {"ec2:CreateTags", "ec2:DeleteTags"}
    found = rendered_statements_with("app-tier.json", actions)
    assert {a for s in found for a in as_list(s["Action"])} == {
        "ec2:TerminateInstances",
        "ec2:StopInstances",
        "ec2:CreateTags",
        "ec2:DeleteTags",
    }
    for statement in found:
        assert statement["Condition"]["ArnEquals"] == {"ec2:SourceInstanceARN": OWN_INSTANCE}


def test_a_workers_auto_scaling_calls_reach_its_group_not_one_instance() -> None:
    """Auto Scaling has no condition key that names the instance of SetInstanceProtection
    or TerminateInstanceInAutoScalingGroup (only the group, its tags and sizes), so these
    two cannot be narrowed to the worker's own instance: they stay on the workers' group,
    as deploy/iam/README.md says."""
    actions = {
        "autoscaling:SetInstanceProtection",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    }
    (statement,) = statements_with("app-tier.json", actions)
    assert set(as_list(statement["Action"])) == actions
    assert as_list(statement["Resource"]) == [WORKERS_GROUP]
    assert "Condition" not in statement
    readme = (POLICY_DIR / "README.md").read_text(encoding="utf-8")
    assert "no condition key" in readme


@pytest.mark.parametrize("settings", [DEFAULTS, SEPARATE], ids=["shared", "separate"])
def test_a_worker_writes_no_manifest_and_not_the_lease(settings: Settings) -> None:
    """A manifest's owner field authorises reads of its job, and the lease elects the
    scaler: the worker writes neither. Results have a statement of their own; the name
    objects' `/*` cannot leave folders out (IAM has no wildcard that stops at a `/`, and a
    name object's key is any file name), so an explicit Deny does."""
    policy = rendered_policy("app-tier.json", settings)
    records = settings.records_bucket
    manifests = [
        s3_arn(records, job_key("j1")),
        s3_arn(records, job_key("0123456789abcdef0123456789abcdef")),
    ]
    lease = s3_arn(records, settings.leader_lease_key)
    (deny,) = [s for s in statements(policy) if s["Effect"] == "Deny"]
    assert as_list(deny["Action"]) == ["s3:PutObject"] and "Condition" not in deny
    for arn in [*manifests, lease]:
        assert any(fnmatchcase(arn, r) for r in as_list(deny["Resource"])), arn
        assert not allows(policy, "s3:PutObject", arn), arn
    name_objects = s3_arn(OUTPUT, "*")
    for statement in statements(policy):
        if statement["Effect"] != "Allow" or "s3:PutObject" not in as_list(statement["Action"]):
            continue
        for resource in as_list(statement["Resource"]):
            if resource == name_objects:
                continue  # the Deny above carves manifests and the lease out of it
            for arn in [*manifests, lease]:
                assert not fnmatchcase(arn, resource), (resource, arn)
    (results,) = [s for s in statements(policy) if s.get("Sid") == "WriteResults"]
    assert as_list(results["Resource"]) == [s3_arn(records, f"{settings.results_prefix}*")]
    result = s3_arn(records, result_key(settings, "r1"))
    assert not any(fnmatchcase(result, r) for r in as_list(deny["Resource"]))
