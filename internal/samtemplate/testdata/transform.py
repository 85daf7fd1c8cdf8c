"""Transforms template.yaml with the SAM translator, offline, once per parameter set.

stdin:  {"template": "<path>", "cases": [{"<parameter>": "<value>", ...}, ...]}
stdout: {"samtranslator": "<version>", "source": <template.yaml as JSON>, "transformed": [<CloudFormation>, ...]}
"""

import copy
import json
import logging
import sys

try:
    import samtranslator
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse
except ImportError as err:
    sys.exit(f"the SAM translator is not importable by {sys.executable} ({err}); it ships in the machine image's Python (pip install aws-sam-translator)")


# The translator logs usage metrics it never publishes offline; only its errors matter here.
logging.getLogger("samtranslator").setLevel(logging.CRITICAL)


class NoManagedPolicies:
    """The template names no managed policy by name, so no AWS lookup is needed: the map is empty."""

    def load(self):
        return {}


def packaged(template):
    """What `sam package` does before CloudFormation sees the template: local CodeUri becomes an S3 object."""
    template = copy.deepcopy(template)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = "s3://example-bucket/deleteconv.zip"
    return template


def main():
    request = json.load(sys.stdin)
    with open(request["template"], encoding="utf-8") as f:
        source = yaml_parse(f.read())
    transformed = [transform(packaged(source), params, NoManagedPolicies()) for params in request["cases"]]
    json.dump({"samtranslator": samtranslator.__version__, "source": source, "transformed": transformed}, sys.stdout)


main()
