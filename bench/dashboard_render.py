#!/usr/bin/env python3
"""The dashboard's render time and message sizes against a running stack (issue 16).

Opens the events URL in headless Chromium (Debian's `chromium` and `chromium-driver`, through
Selenium), waits for the page's first drawn update and reads the page's own clock for it
(`data-first-draw-ms`: milliseconds from navigation start to the end of the first draw), the
vehicles the page counts, the vehicles drawn on the map and the table's pages. It then reads
`GET /events/stream` for `--stream-seconds` and reports the largest SSE message, and saves a
screenshot. Prints one Markdown table row for results/dashboard.md; exit 1 when the page does not
draw within `--timeout` seconds or a message is over 256 KiB.

    python3 -m venv ~/.cache/fleet/render-venv
    ~/.cache/fleet/render-venv/bin/pip install -r bench/dashboard_render.requirements.txt
    ~/.cache/fleet/render-venv/bin/python bench/dashboard_render.py http://127.0.0.1:8080/events
"""

import argparse
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

MESSAGE_CAP = 256 * 1024


def largest_message(url: str, seconds: float) -> tuple[int, int]:
    """(messages, largest `data:` payload in bytes) read from the SSE stream for `seconds`."""
    request = urllib.request.Request(url, headers={"Accept": "text/event-stream"})
    deadline = time.monotonic() + seconds
    count, largest = 0, 0
    with urllib.request.urlopen(request, timeout=seconds + 10) as stream:
        for line in stream:
            if line.startswith(b"data:"):
                count += 1
                largest = max(largest, len(line) - len(b"data:") - 1)
            if time.monotonic() > deadline:
                break
    return count, largest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the events URL that `fleet launch-infra` printed")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the first draw")
    parser.add_argument("--stream-seconds", type=float, default=10.0, help="seconds of SSE to measure")
    parser.add_argument("--screenshot", default="target/dashboard.png", help="where the PNG goes")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()

    options = Options()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1280"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    try:
        opened = time.monotonic()
        driver.get(args.url)
        first_draw_ms = None
        while time.monotonic() - opened < args.timeout:
            value = driver.execute_script("return document.body.dataset.firstDrawMs;")
            if value:
                first_draw_ms = float(value)
                break
            time.sleep(0.05)
        if first_draw_ms is None:
            print(f"the page did not draw within {args.timeout} s", file=sys.stderr)
            return 1
        figures = driver.execute_script(
            """
            var info = document.getElementById('page-info').dataset;
            return {
              vehicles: document.getElementById('vehicles-total').dataset.value,
              drawn: document.getElementById('map').dataset.drawn,
              omitted: document.getElementById('map').dataset.omitted,
              rows: document.querySelectorAll('#vehicles tbody tr').length,
              pages: info.pages,
              draw_ms: document.body.dataset.drawMs,
            };
            """
        )
        # Let the page keep updating, then keep the picture.
        first_id = driver.execute_script("return document.body.dataset.lastEventId;")
        time.sleep(5)
        later_id = driver.execute_script("return document.body.dataset.lastEventId;")
        driver.save_screenshot(args.screenshot)
    finally:
        driver.quit()

    stream_url = args.url.rstrip("/") + "/stream"
    messages, largest = largest_message(stream_url, args.stream_seconds)
    print(
        "| vehicles seen | navigation to first drawn update | one draw | map drawn / omitted "
        "| table rows / pages | updates in 5 s | SSE messages | largest SSE message |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {int(figures['vehicles']):,} | {first_draw_ms:,.0f} ms | {figures['draw_ms']} ms "
        f"| {figures['drawn']} / {figures['omitted']} | {figures['rows']} / {figures['pages']} "
        f"| {int(later_id) - int(first_id)} | {messages} in {args.stream_seconds:.0f} s "
        f"| {largest:,} bytes |"
    )
    print(f"screenshot: {args.screenshot}")
    if largest > MESSAGE_CAP:
        print(f"a message of {largest} bytes is over {MESSAGE_CAP}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
