// Records the page's Content-Security-Policy violations for the specs (an external file:
// the strict pages allow no inline script). window.__csp: [{directive, blocked, source}].
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push({ directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile });
});
