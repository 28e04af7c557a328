"""`python -m assure_doctor`."""

from assure_doctor.cli import main

raise SystemExit(main())
