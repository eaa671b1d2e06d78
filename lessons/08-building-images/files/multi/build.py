# The "build tool" of this example: generates a static page at build time.
import platform

rows = "\n".join(f"<tr><td>{n}</td><td>{n * n}</td></tr>" for n in range(1, 11))
page = f"""<!DOCTYPE html>
<html><head><title>Squares</title></head><body>
<h1>Squares</h1>
<table>
{rows}
</table>
<p>Generated at build time by Python {platform.python_version()}.</p>
</body></html>
"""
with open("/out/index.html", "w") as f:
    f.write(page)
