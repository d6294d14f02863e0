#!/usr/bin/python3
"""Drives the xvlm web page in Debian's headless chromium over the DevTools
protocol (python3-websocket) and checks what a user would see:

  1. type a query and press Search   -> the results grid fills with pictures
  2. click a result, type a phrase   -> the grounding box is drawn on it
  3. upload an image, type texts     -> the texts come back ranked

usage: drive_page.py URL IMAGE_FILE [SCREENSHOT.png]
Exit status: 0 all seen, 1 something was not, 77 no chromium / no websocket module.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websocket  # Debian: python3-websocket
except ImportError:
    print("skipped: python3-websocket is not installed")
    sys.exit(77)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One browser tab, driven by DevTools commands."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.errors = []

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == "Runtime.exceptionThrown":
                self.errors.append(msg["params"]["exceptionDetails"].get("text", "exception"))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, what, expression, seconds=30):
        end = time.time() + seconds
        while time.time() < end:
            if self.js(expression):
                print(f"ok: {what}")
                return True
            time.sleep(0.1)
        status = self.js("document.getElementById('status').textContent")
        print(f"FAIL: {what} (not seen in {seconds} s); the page's status line: {status!r}")
        return False


def start_browser(profile):
    proc = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--window-size=1200,900", "--remote-debugging-port=0", "--remote-allow-origins=*",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.time() + 60
    while time.time() < end:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    raise RuntimeError("chromium did not open its DevTools port")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    url, image = sys.argv[1], os.path.abspath(sys.argv[2])
    shot = sys.argv[3] if len(sys.argv) > 3 else None
    if not CHROMIUM:
        print("skipped: chromium is not installed")
        return 77
    profile = tempfile.mkdtemp(prefix="xvlm_chromium_")
    proc = None
    try:
        proc, port = start_browser(profile)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Runtime.enable")
        page.call("Page.enable")
        page.call("Page.navigate", url=url)
        ok = page.wait_for("the page loaded", "document.readyState === 'complete' && !!document.getElementById('query')")

        # 1. search -> a grid of result pictures with scores
        page.js("$('query').value = 'two blue circles'; $('search-btn').click(); true")
        ok = ok and page.wait_for(
            "the results grid shows pictures with scores",
            "(() => { const r = document.querySelectorAll('#results .result');"
            " return r.length >= 2 && [...r].every(c => c.querySelector('img').naturalWidth > 0"
            " && /score/.test(c.textContent)); })()")

        # 2. click a result, type a phrase -> the box drawn over the picture
        page.js("document.querySelectorAll('#results .result')[1].click(); true")
        ok = ok and page.wait_for("the viewer shows the chosen picture",
                                  "!$('viewer').hidden && $('picture-img').naturalWidth > 0")
        page.js("$('phrase').value = 'the small green triangle'; $('ground-btn').click(); true")
        ok = ok and page.wait_for(
            "a grounding box is drawn on the picture",
            "(() => { const b = $('box'), p = $('picture-img').getBoundingClientRect(), r = b.getBoundingClientRect();"
            " return !b.hidden && r.width > 0 && r.height > 0 && r.left >= p.left - 2 && r.right <= p.right + 2; })()")

        if shot:  # the page as a user sees it with the box drawn
            page.js("$('viewer').scrollIntoView(); true")
            with open(shot, "wb") as f:
                f.write(base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"]))

        # 3. upload an image -> rank texts for it
        doc = page.call("DOM.getDocument")
        node = page.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#upload")
        page.js("document.getElementById('upload-panel').open = true; true")
        page.call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[image])
        ok = ok and page.wait_for("the uploaded image is shown", "$('picture-img').src.startsWith('data:image/')")
        page.js("$('texts').value = 'a red square\\ntwo blue circles\\nthe small green triangle'; $('rank-btn').click(); true")
        ok = ok and page.wait_for("the texts come back ranked", "document.querySelectorAll('#ranked li').length === 3")

        if page.errors:
            print("FAIL: JavaScript errors:", page.errors)
            ok = False
        return 0 if ok else 1
    finally:
        if proc:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
