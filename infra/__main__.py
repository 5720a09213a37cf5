"""What `pulumi up` runs (Pulumi.yaml: `main: infra/`). Thin: the program is infra.estate.

Pulumi runs this folder as a script, so only `infra/` is on sys.path; its parent is added
to import the program as the package the tests and `govops plan` import.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.estate.program import run

run()
