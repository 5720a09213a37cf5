"""What `pulumi preview --policy-pack infra/policy` runs. Thin: the policies are pack.py.

The policy host runs this folder as a script: make its grandparent importable so the pack
and the tests share `infra.policy`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import EnforcementLevel, PolicyPack

from infra.policy.pack import PACK_NAME, policies

PolicyPack(name=PACK_NAME, policies=policies(), enforcement_level=EnforcementLevel.MANDATORY)
