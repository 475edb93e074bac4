// The course book's additions to sphinx-book-theme (book/CONVENTIONS.md).
(function () {
  "use strict";

  // ---- Figures: never shown below FLOOR of their natural size. Chapter figures are
  // at most 6.8 in x 100 dpi = 680 px with text >= 8 pt = 11 px, so their text stays
  // >= 9 px; on a narrow screen a wider figure scrolls sideways in its own box.
  var FLOOR = 0.82;

  function fit(img) {
    if (!img.naturalWidth) return;
    var box = img.parentElement;
    var wrapped = box.classList.contains("adc-figure-scroll");
    var room = (wrapped ? box.parentElement : box).clientWidth;
    var needed = Math.ceil(FLOOR * img.naturalWidth);
    if (needed > room) {
      if (!wrapped) {
        box = document.createElement("div");
        box.className = "adc-figure-scroll";
        img.parentElement.insertBefore(box, img);
        box.appendChild(img);
      }
      img.style.width = needed + "px";
    } else if (wrapped) {
      img.style.width = "";
      box.parentElement.insertBefore(img, box);
      box.remove();
    }
  }

  function fitAll() {
    document.querySelectorAll(".cell_output img").forEach(function (img) {
      if (img.complete) fit(img);
      else img.addEventListener("load", function () { fit(img); }, { once: true });
    });
  }

  // ---- Search: the snippets of the search page come from the pages' HTML, where
  // formulas are still raw TeX (MathJax typesets them only in the browser). Show
  // them as plain symbols instead of "\mathcal{P}_N".
  var SYMBOLS = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", varepsilon: "ε", epsilon: "ε", eta: "η",
    theta: "θ", kappa: "κ", lambda: "λ", mu: "μ", nu: "ν", xi: "ξ", pi: "π", rho: "ρ",
    sigma: "σ", tau: "τ", phi: "φ", varphi: "φ", chi: "χ", psi: "ψ", omega: "ω",
    Gamma: "Γ", Delta: "Δ", Theta: "Θ", Lambda: "Λ", Sigma: "Σ", Phi: "Φ", Psi: "Ψ",
    Omega: "Ω", in: "∈", notin: "∉", le: "≤", leq: "≤", ge: "≥", geq: "≥", neq: "≠",
    ne: "≠", approx: "≈", sim: "∼", cdot: "·", times: "×", infty: "∞", sum: "Σ",
    prod: "Π", partial: "∂", nabla: "∇", to: "→", rightarrow: "→", leftarrow: "←",
    iff: "⇔", subset: "⊂", cap: "∩", cup: "∪", emptyset: "∅", top: "ᵀ", ell: "ℓ",
    pm: "±", mid: "|", quad: " ", qquad: " ", ",": " ", ";": " ", "!": "", lbrace: "{",
    rbrace: "}", "{": "{", "}": "}", ldots: "…", dots: "…", cdots: "…",
  };

  function texToText(tex) {
    return tex
      .replace(/^\s*(\\\(|\\\[|\$\$?)/, "").replace(/(\\\)|\\\]|\$\$?)\s*$/, "")
      .replace(/\\(begin|end)\{[^}]*\}/g, " ")
      .replace(/\\(left|right|big|Big|bigg|Bigg)\b/g, "")
      .replace(/\\([A-Za-z]+|[,;!{}])/g, function (m, name) {
        return Object.prototype.hasOwnProperty.call(SYMBOLS, name) ? SYMBOLS[name] : "";
      })
      .replace(/[{}]/g, "").replace(/&/g, " ").replace(/\\\\/g, " ")
      .replace(/\s+/g, " ").trim();
  }

  function patchSearch() {
    if (typeof Search === "undefined" || !Search.htmlToText || Search.adcoursePatched) return;
    var original = Search.htmlToText;
    Search.htmlToText = function (htmlString, anchor) {
      var doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll("span.math, div.math").forEach(function (el) {
        var text = texToText(el.textContent);
        el.replaceWith(doc.createTextNode(el.tagName === "DIV" ? " " + text + " " : text));
      });
      return original.call(this, doc.documentElement.outerHTML, anchor);
    };
    Search.adcoursePatched = true;
  }

  window.adcourseTexToText = texToText;  // for the book's tests

  function start() {
    fitAll();
    patchSearch();
    var pending;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(fitAll, 100);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
