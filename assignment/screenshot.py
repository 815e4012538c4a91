"""Save a screenshot of an HTML file with Debian's headless chromium, driven by Playwright.

Playwright never downloads a browser here: it starts ``/usr/bin/chromium`` (``make browser``
installs it), offline, with the flags below.
"""
import argparse
import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_available():
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


def screenshot(html_file, png_file, width=1200, height=None, selector=None):
    """Open ``html_file`` in headless chromium and save the page as ``png_file``; return its path.

    The image is ``width`` CSS pixels wide and shows the whole page, or only its top ``height``
    pixels, or only the element ``selector`` (a CSS selector, say ``#pa2-summary``).
    """
    from playwright.sync_api import sync_playwright

    png_file = Path(png_file)
    png_file.parent.mkdir(parents=True, exist_ok=True)
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height or 900})
            page.goto(Path(html_file).resolve().as_uri())
            if selector:
                page.locator(selector).first.screenshot(path=str(png_file))
            else:
                page.screenshot(path=str(png_file), full_page=height is None)
        finally:
            browser.close()
    return png_file


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html")
    parser.add_argument("png")
    parser.add_argument("--height", type=int, help="only the top HEIGHT pixels (default: the whole page)")
    parser.add_argument("--width", type=int, default=1200, help="the page's width in CSS pixels (default: 1200)")
    parser.add_argument("--selector", help="only this element (a CSS selector)")
    args = parser.parse_args()
    print(f"wrote {screenshot(args.html, args.png, width=args.width, height=args.height, selector=args.selector)}")
