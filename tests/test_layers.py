"""The engine knows nothing of the web layer."""
import subprocess
import sys


def test_importing_the_engine_loads_no_flask():
    code = ("import sys, workflow.operations, workflow.audit, workflow.accounts, workflow.demo, workflow.queries;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'api', 'flask_smorest')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
