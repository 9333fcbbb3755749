"""The infrastructure as code is linted, and agrees with the settings."""

import json
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "table.yaml"


def test_cloudformation_template_passes_cfn_lint():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lambda_filter_in_the_template_is_the_consumers_default():
    pattern = re.search(r"- Pattern: '(.+)'", TEMPLATE.read_text()).group(1)
    assert [json.loads(pattern)] == settings.STREAM_FILTERS


def test_table_definition_matches_what_init_dynamodb_creates():
    from scoring import store

    text = TEMPLATE.read_text()
    definition = store.table_definition("gamescores")
    for attribute in definition["AttributeDefinitions"]:
        assert f"AttributeName: {attribute['AttributeName']}, AttributeType: S" in text
    for index in definition["GlobalSecondaryIndexes"]:
        assert f"IndexName: {index['IndexName']}" in text
    assert f"StreamViewType: {definition['StreamSpecification']['StreamViewType']}" in text
    ttl = re.search(r"TimeToLiveSpecification:\n\s+AttributeName: (\w+)\n\s+Enabled: true", text)
    assert ttl and ttl.group(1) == store.PURGE_AT


def test_the_lambda_mapping_reports_what_it_gives_up_on():
    text = TEMPLATE.read_text()
    mapping = text[text.index("Type: AWS::Lambda::EventSourceMapping"):]
    assert re.search(r"DestinationConfig:\s+OnFailure:\s+Destination: !GetAtt ConsumerFailures.Arn", mapping)
    assert re.search(r"Action: sqs:SendMessage\s+Resource: !GetAtt ConsumerFailures.Arn", text)


def template() -> dict:
    from cfnlint.decode import decode_str

    decoded, problems = decode_str(TEMPLATE.read_text())
    assert not problems
    return decoded


def test_a_lambda_stack_gives_the_function_role_the_stream_before_it_maps_the_stream():
    """Lambda refuses to create a mapping whose function role cannot read the
    stream, and the stream is new with the stack: the stack attaches the
    policy to the role, and the mapping waits for it."""
    decoded = template()
    resources = decoded["Resources"]
    assert resources["ConsumerMapping"]["DependsOn"] == "ConsumerPolicy"
    attach = {"Fn::If": ["HasConsumerRole", [{"Ref": "ConsumerRoleName"}], {"Ref": "AWS::NoValue"}]}
    assert resources["ConsumerPolicy"]["Properties"]["Roles"] == attach
    (rule,) = decoded["Rules"].values()
    assert rule["RuleCondition"] == decoded["Conditions"]["UseLambda"]
    assert rule["Assertions"][0]["Assert"] == decoded["Conditions"]["HasConsumerRole"]
    # A rolled-back first deploy must not leave the table behind to block the next.
    assert resources["ScoresTable"]["DeletionPolicy"] == "RetainExceptOnCreate"
