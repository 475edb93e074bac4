"""Sphinx extension of the course book (listed in ``book/_config.yml``).

What it adds (see ``book/CONVENTIONS.md``):

* the ``run-this-chapter`` directive: the box at the top of every chapter that links
  the chapter's exercise notebook (a download from the page), the chapter itself as a
  notebook, and the repository (``git clone`` when ``adcourse_repository_url`` is set;
  always the zipped sources of the commit the book was built from);
* one copy of every inline script per page (the theme stack registers some twice:
  ``const THEBE_JS_URL`` declared twice was a JavaScript error on every page);
* ``adcourse-source.zip`` next to the pages (``git archive`` of ``HEAD``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

SOURCE_ZIP = "adcourse-source.zip"


def _repo_root(srcdir):
    try:
        out = subprocess.run(["git", "-C", str(srcdir), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(out.stdout.strip())


class RunThisChapter(SphinxDirective):
    """``:::{run-this-chapter}`` — the "run this chapter / open its exercise" box.

    Options: ``:exercise: none`` for a chapter without an exercise notebook
    (default: ``exercises/<this page's name>.ipynb``, which must exist).
    """

    has_content = False
    option_spec = {"exercise": str}

    def run(self):
        env = self.env
        docname = env.docname
        chapter = Path(env.doc2path(docname)).name
        exercise = self.options.get("exercise", f"{docname}.ipynb")
        lines = []
        if exercise != "none":
            rel = f"../exercises/{exercise}"
            path = (Path(env.srcdir) / rel).resolve()
            if not path.is_file():
                raise self.error(f"run-this-chapter: no exercise notebook {path}")
            lines.append(f"- **Exercise:** {{download}}`exercises/{exercise} <{rel}>` — download it, "
                         "or open it in JupyterLab; fill in every `# YOUR CODE HERE` and run the "
                         "check cell below each task.")
        lines.append(f"- **This chapter as a notebook:** {{download}}`book/{chapter} <{chapter}>` "
                     "(with `make lab` it opens as a notebook in JupyterLab; run it from the top).")
        box = nodes.admonition(classes=["tip", "adc-run-box"])
        box += nodes.title(text="Run this chapter, open its exercise")
        self.state.nested_parse(StringList(lines, source=env.doc2path(docname)), self.content_offset, box)
        bullets = next(n for n in box.children if isinstance(n, nodes.bullet_list))
        bullets += nodes.list_item("", self._repository_line(env.config.adcourse_repository_url))
        # the link to the page that explains how to run the course, resolved by Sphinx
        para = nodes.paragraph()
        self.state.nested_parse(StringList(
            ["How to set up and run everything: {ref}`how to use the course <run-the-course>`."]),
            self.content_offset, para)
        box += para.children
        return [box]

    @staticmethod
    def _repository_line(url):
        """``git clone URL`` when the URL is configured; always the zipped sources."""
        para = nodes.paragraph()
        para += nodes.strong(text="The repository:")
        if url:
            para += nodes.Text(" clone it, ")
            para += nodes.literal(text=f"git clone {url} adcourse")
            para += nodes.Text(", or download ")
        else:
            para += nodes.Text(" download ")
        para += nodes.reference("", "the sources of this book", refuri=SOURCE_ZIP, internal=False)
        para += nodes.Text(" (a zip of the commit it was built from); in its folder, ")
        para += nodes.literal(text="make lab")
        para += nodes.Text(" sets everything up and opens JupyterLab.")
        return para


def _one_copy_of_each_script(app, pagename, templatename, context, doctree):
    """Drop repeated inline scripts (same body) and repeated files from the page."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = (getattr(js, "filename", js) or None, tuple(sorted(getattr(js, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def _write_source_zip(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    root = _repo_root(app.srcdir)
    target = Path(app.outdir) / SOURCE_ZIP
    if root is None:
        logger.info("adcourse_book: not a git checkout, %s not written", SOURCE_ZIP)
        return
    subprocess.run(["git", "-C", str(root), "archive", "--format=zip", "--prefix=adcourse/",
                    "-o", str(target), "HEAD"], check=True)


def setup(app):
    app.add_config_value("adcourse_repository_url", "", "env")
    app.add_directive("run-this-chapter", RunThisChapter)
    app.connect("html-page-context", _one_copy_of_each_script, priority=900)
    app.connect("build-finished", _write_source_zip)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
