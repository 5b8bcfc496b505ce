#!/usr/bin/env bash
# Lints template.yaml offline, with the pinned tools of local/requirements-tools.txt (.venv/tools):
#   1. sam validate --lint                          (SAM transform + cfn-lint's default rules)
#   2. sam validate                                 (the SAM translator alone: catches event-source
#                                                    mistakes that --lint misses)
#   3. cfn-lint -a cfn_lint_serverless.rules        (serverless best-practice rules)
#   1b. sam validate --config-env dev|prod        (the committed samconfig.toml's environments)
#   4. cfn-lint on SAM's translation of the template (cfn-lint checks AWS::Serverless::* resources
#      against SAM's own schema only; the generated event source mappings, functions and roles are
#      checked against CloudFormation's, e.g. a FunctionResponseTypes typo or a timeout over 900)
#   5. checkov (security scan, pinned in local/requirements-checkov.txt, .venv/checkov) over the
#      template (its cloudformation framework reads AWS::Serverless::* too) and over SAM's
#      translation (the generated roles, event source mappings, API stage). Any failed check fails.
#      A check is skipped only on its resource, with the reason beside it (Metadata.checkov.skip in
#      template.yaml), never here.
# Exits non-zero if any of them fails; runs all of them either way so one run shows every problem.
# Usage: scripts/lint-template.sh [TEMPLATE]   (default: template.yaml)
#
# Offline: none of these calls AWS. Plain `sam validate` builds an IAM client but asks it for
# managed policies only when the template names one by name (this one uses inline statements and
# SAM adds its managed policies by ARN), so dummy credentials and a region are all it needs.
# SAM CLI telemetry is switched off so nothing is sent. checkov runs without a Prisma Cloud/Bridgecrew
# API key, with --skip-download (no policy or guideline download) and without its PyPI update check.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

"$root/scripts/venv.sh" tools || { echo "lint-template: could not set up .venv/tools" >&2; exit 2; }
"$root/scripts/venv.sh" checkov || { echo "lint-template: could not set up .venv/checkov" >&2; exit 2; }

export PATH="$root/.venv/tools/bin:$PATH"
export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
unset AWS_PROFILE AWS_SESSION_TOKEN
# No shared config or credentials files: only the dummy values above.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
# Nothing here may use IMDS (it would hang on a machine without one).
export AWS_EC2_METADATA_DISABLED=true

template=${1:-template.yaml}
failed=0
# run LABEL COMMAND...
run() {
  local label=$1
  shift
  echo "==> $label"
  if "$@"; then
    echo "    ok"
  else
    echo "    FAILED: $label" >&2
    failed=1
  fi
}

run "sam validate --lint ($template)" sam validate --lint --template-file "$template"
# The committed samconfig.toml's environments: each must read and validate.
for config_env in dev prod; do
  run "sam validate --config-env $config_env" sam validate --config-env "$config_env" --config-file "$root/samconfig.toml" --template-file "$template"
done
run "sam validate ($template)" sam validate --template-file "$template"
run "cfn-lint -a cfn_lint_serverless.rules ($template)" cfn-lint -a cfn_lint_serverless.rules -- "$template"

translated=$(mktemp --suffix=.yaml)
trap 'rm -f "$translated"' EXIT
translate() {
  # The same translation plain `sam validate` runs (local CodeUri replaced by a dummy S3 URI).
  python - "$template" > "$translated" <<'PY'
import sys
import boto3
from samcli.lib.translate.sam_template_validator import SamTemplateValidator
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader

with open(sys.argv[1]) as f:
    template = yaml_parse(f.read())
validator = SamTemplateValidator(template, ManagedPolicyLoader(boto3.client("iam")), region="us-east-1")
print(validator.get_translated_template_if_valid())
PY
}
lint_translated() {
  translate || return 1
  cfn-lint -- "$translated"
}
run "cfn-lint (SAM's translation of $template)" lint_translated

# checkov FILE: every check of the cloudformation framework, offline; fails on any failed check.
checkov() {
  BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=TRUE \
    "$root/.venv/checkov/bin/checkov" --file "$1" --framework cloudformation --skip-download \
    --quiet --compact --output cli
}
run "checkov ($template)" checkov "$template"
checkov_translated() {
  translate || return 1
  checkov "$translated"
}
run "checkov (SAM's translation of $template)" checkov_translated

if [ "$failed" -ne 0 ]; then
  echo "lint-template: FAILED" >&2
  exit 1
fi
echo "lint-template: all checks passed"
