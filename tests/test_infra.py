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
