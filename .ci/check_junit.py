"""Fail unless the JUnit report shows end-to-end tests that ran, none skipped, none failed."""

import sys
import xml.etree.ElementTree as ET

cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
e2e = unit = skipped = failed = 0
for case in cases:
    classname = case.get("classname", "")
    is_e2e = classname.startswith("e2e.") or ".e2e." in classname
    e2e += is_e2e
    unit += not is_e2e
    skipped += case.find("skipped") is not None
    failed += case.find("failure") is not None or case.find("error") is not None
print(f"junit: {unit} unit, {e2e} e2e, {skipped} skipped, {failed} failed")
if e2e == 0 or skipped or failed:
    sys.exit("CI requires the e2e tests to run, with none skipped and none failed")
