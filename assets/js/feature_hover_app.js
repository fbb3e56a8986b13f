// In the app: poll for the plot (gr.Plot re-renders it) and (re)attach the hover handlers.
(function () {
  var box = pairlabHoverBox('feat-hover-box');
  var seen = null;
  setInterval(function () {
    var gd = document.querySelector('#feat-plot .js-plotly-plot');
    if (gd && (gd !== seen || !gd.__pairlabHover)) { if (pairlabAttachHover(gd, box)) seen = gd; }
  }, 600);
})();
