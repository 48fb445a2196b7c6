"""`entra-batch doctor`: everything that can be known about a target before a run, as a
checklist of values (batch/doctor/report.py), each with its remedy.

- `run.py`: `run_doctor(target)`, the whole, within a time budget;
- `reads.py`: the GETs it makes, at once;
- `tenant.py`, `identity.py`, `extensions.py`, `service.py`: the sections' checks, each a
  plain function of the answers (the identity section asks the run's own permission
  preflight, `Connection.check_permissions`).
"""

from batch.doctor.report import FAIL, OK, SECTIONS, WARN, Check, DoctorReport
from batch.doctor.run import run_doctor

__all__ = ["FAIL", "OK", "SECTIONS", "WARN", "Check", "DoctorReport", "run_doctor"]
