"""reports/<preset>/index.html renders in a real browser: headless Chromium opens the page built from a
fake results tree, and a small script in a copy of it writes into the DOM whether every image loaded
(naturalWidth > 0) and which tables are present; ``--dump-dom`` hands that back."""
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
    return {id: t.id, rows: t.tBodies.length ? t.tBodies[0].rows.length : 0};
  });
  var pre = document.createElement('pre');
  pre.id = 'browser-check';
  pre.textContent = 'BROWSER-' + 'CHECK:' + JSON.stringify({images: imgs, tables: tables}) + ':' + 'END';
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
    assert tables == {"table1": 8, "table2": 7, "table3": 6, "table4": 3, "table5": 8}
