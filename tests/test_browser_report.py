"""reports/<preset>/index.html renders in a real browser: headless Chromium opens the page built from a
fake results tree at 1400 px, and a small script in a copy of it writes into the DOM whether every image
loaded (naturalWidth > 0), which tables are present, the findings section, and whether the page scrolls
sideways (it must not: wide tables scroll inside their box); ``--dump-dom`` hands that back."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from test_report import _build, make_tree

CHROMIUM = Path("/usr/bin/chromium")

CHECK = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.from(document.images).map(function (i) {
    return {src: i.getAttribute('src'), complete: i.complete, w: i.naturalWidth};
  });
  var tables = Array.from(document.querySelectorAll('table.results')).map(function (t) {
    var box = t.parentElement;
    return {id: t.id, rows: t.tBodies.length ? t.tBodies[0].rows.length : 0,
            scrollBox: box.classList.contains('scroll') && getComputedStyle(box).overflowX === 'auto'
                       && box.getBoundingClientRect().right <= window.innerWidth};
  });
  var findings = document.getElementById('findings');
  var doc = document.documentElement;
  var page = {scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, innerWidth: window.innerWidth,
              findings: findings ? findings.querySelectorAll('tbody tr').length : -1,
              findingsFirst: findings ? findings.getBoundingClientRect().top <
                  document.getElementById('tables').getBoundingClientRect().top : false};
  var pre = document.createElement('pre');
  pre.id = 'browser-check';
  pre.textContent = 'BROWSER-' + 'CHECK:' + JSON.stringify({images: imgs, tables: tables, page: page}) + ':' + 'END';
  document.body.appendChild(pre);
});
</script>
"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium absent: run scripts/install_chromium.sh "
                                                   "(apt-get install -y chromium, as root) to enable this test")
def test_index_renders_in_headless_chromium(tmp_path):
    tree = make_tree(tmp_path)
    out, res = _build(tree, tmp_path)
    page = (out / "index.html").read_text()
    check = out / "_browser_check.html"
    check.write_text(page.replace("</body>", CHECK + "</body>"))
    profile = tmp_path / "chromium-profile"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={profile}", "--allow-file-access-from-files", "--virtual-time-budget=10000",
           "--window-size=1400,900", "--hide-scrollbars",
           "--dump-dom", check.resolve().as_uri()]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    m = re.search(r"<pre id=\"browser-check\">BROWSER-CHECK:(.*?):END</pre>", proc.stdout, re.S)
    assert m, f"no check result in the DOM (rc {proc.returncode}); stderr: {proc.stderr[-2000:]}"
    result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    imgs = result["images"]
    expected = {f["file"] for f in res["figures"]}
    assert {i["src"] for i in imgs} == expected and len(imgs) >= 7
    broken = [i for i in imgs if not (i["complete"] and i["w"] > 0)]
    assert not broken, broken
    tables = {t["id"]: t["rows"] for t in result["tables"]}
    # the paper's rows plus the YOLO11n-pose rows trained here (Tables 1, 4, 5)
    assert tables == {"table1": 9, "table2": 7, "table3": 6, "table4": 4, "table5": 9}
    assert all(t["scrollBox"] for t in result["tables"]), result["tables"]   # wide tables scroll in their box
    page = result["page"]
    assert page["findings"] == len(res["findings"]) > 0 and page["findingsFirst"], page
    assert page["innerWidth"] == 1400, page
    assert page["scrollWidth"] <= page["clientWidth"], f"the page scrolls sideways at 1400 px: {page}"
