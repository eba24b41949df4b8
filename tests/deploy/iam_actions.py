"""The IAM actions an AWS operation needs, for comparing the code's calls with deploy/iam/.

SQS, EC2 and Auto Scaling name their IAM actions after their operations, with a few
exceptions (or additions) listed here. S3 often does not, so every S3 operation IRAS
calls must be listed, after checking the Service Authorization Reference; an unlisted
one fails loudly.
"""

from __future__ import annotations

from tests.aws_calls import AwsCall, UnknownAwsCall

#: What each S3 operation IRAS may call needs in IAM.
S3_ACTIONS: dict[str, tuple[str, ...]] = {
    # ListBucket on the bucket turns a missing key's 403 AccessDenied into 404 NoSuchKey,
    # which both callers of GetObject rely on (the worker and the gateway's lookup).
    "GetObject": ("s3:GetObject", "s3:ListBucket"),
    "HeadObject": ("s3:GetObject", "s3:ListBucket"),
    "PutObject": ("s3:PutObject",),
    "DeleteObject": ("s3:DeleteObject",),
    # Deleting by VersionId (how a bucket is emptied) needs DeleteObjectVersion as well.
    "DeleteObjects": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "ListObjectsV2": ("s3:ListBucket",),
    "ListObjectVersions": ("s3:ListBucketVersions",),
    "HeadBucket": ("s3:ListBucket",),
    "CreateBucket": ("s3:CreateBucket",),
    "DeleteBucket": ("s3:DeleteBucket",),
    "PutBucketEncryption": ("s3:PutEncryptionConfiguration",),
    "PutPublicAccessBlock": ("s3:PutBucketPublicAccessBlock",),
    "PutBucketLifecycleConfiguration": ("s3:PutLifecycleConfiguration",),
}

#: SQS, EC2 and Auto Scaling actions are named after their operations, except these.
OTHER_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("sqs", "SendMessageBatch"): ("sqs:SendMessage",),
    ("sqs", "DeleteMessageBatch"): ("sqs:DeleteMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility",),
    # The fleet tags instances in the launch request, and workers need the app-tier role
    # (their instance profile) to reach S3 and SQS, so a launch also needs these two.
    ("ec2", "RunInstances"): ("ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"),
    # A group that names a launch template is checked, as it is created or updated, for
    # the caller's right to launch from that template (RunInstances) and to hand its
    # instance profile's role to EC2 (PassRole); the first group of an account also
    # creates Auto Scaling's service-linked role, which needs CreateServiceLinkedRole.
    # (The template tags nothing itself: the group's tags reach instances through the
    # service-linked role, so no CreateTags.)
    ("autoscaling", "CreateAutoScalingGroup"): (
        "autoscaling:CreateAutoScalingGroup",
        "ec2:RunInstances",
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
    ),
    ("autoscaling", "UpdateAutoScalingGroup"): (
        "autoscaling:UpdateAutoScalingGroup",
        "ec2:RunInstances",
        "iam:PassRole",
    ),
}


def iam_actions(call: AwsCall) -> tuple[str, ...]:
    """The IAM actions `call` needs."""
    if call.service == "s3":
        if call.operation not in S3_ACTIONS:
            raise UnknownAwsCall(
                f"{call.where}: no IAM mapping for s3 {call.operation}; look it up in the "
                "Service Authorization Reference and add it to S3_ACTIONS in tests/iam_actions.py"
            )
        return S3_ACTIONS[call.operation]
    default = (f"{call.service}:{call.operation}",)
    return OTHER_ACTIONS.get((call.service, call.operation), default)
