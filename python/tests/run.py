#!/usr/bin/env python3
"""The bindings' tests (ctest test_python): the package from this source tree
against the libxvlm.so that $XVLM_LIBRARY names. Exit 77 (skipped) without
numpy or outside ctest (the helper programs are not named)."""
import os
import sys
import unittest

try:
    import numpy  # noqa: F401
except ImportError:
    print("test_python: skipped: numpy is not installed (Debian: apt-get install python3-numpy)")
    sys.exit(77)
missing = [v for v in ("XVLM_LIBRARY", "XV_BIN", "XV_PYTHON_WORLD") if not os.environ.get(v)]
if missing:
    print(f"test_python: skipped: {', '.join(missing)} not set (run through ctest)")
    sys.exit(77)

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(here))  # the xvlm package of this tree
sys.path.insert(0, here)
sys.dont_write_bytecode = True
suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py", top_level_dir=here)
result = unittest.TextTestRunner(verbosity=2).run(suite)
failed = len(result.failures) + len(result.errors)
print(f"test_python: {result.testsRun - failed - len(result.skipped)} passed, {failed} failed, "
      f"{len(result.skipped)} skipped")
sys.exit(0 if result.wasSuccessful() else 1)
