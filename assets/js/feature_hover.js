// Hover thumbnails for the feature-space plot (pairlab.eval.feature_plot): shared by the app and the standalone HTML.
function pairlabAttachHover(gd, box) {
  if (!gd || typeof gd.on !== 'function' || !box) return false;
  if (gd.__pairlabHover) {
    gd.removeListener('plotly_hover', gd.__pairlabHover[0]);
    gd.removeListener('plotly_unhover', gd.__pairlabHover[1]);
  }
  var esc = function (s) { return String(s).replace(/[&<>"]/g, function (c) {
    return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]; }); };
  var show = function (ev) {
    var pt = ev && ev.points && ev.points[0];
    if (!pt || !pt.customdata || pt.customdata.length < 2) return;
    var meta = ((gd.layout || {}).meta || {}).pairlab || {};
    var sp = (meta.sprites || {})[(pt.data.meta || {}).group];
    var idx = Number(pt.customdata[0]);
    var img = box.querySelector('.pairlab-thumb'), txt = box.querySelector('.pairlab-text');
    if (!img) {
      box.innerHTML = '<div class="pairlab-thumb"></div><div class="pairlab-text"></div>';
      img = box.querySelector('.pairlab-thumb'); txt = box.querySelector('.pairlab-text');
    }
    var z = 96;
    if (sp && idx >= 0) {
      var c = idx % sp.cols, r = Math.floor(idx / sp.cols);
      img.style.cssText = 'width:' + z + 'px;height:' + z + 'px;background-repeat:no-repeat;' +
        'background-size:' + (sp.cols * z) + 'px ' + (sp.rows * z) + 'px;background-position:-' + (c * z) + 'px -' +
        (r * z) + 'px;border:3px solid ' + (pt.data.marker || {}).color + ';margin-bottom:4px;image-rendering:auto';
      img.style.backgroundImage = 'url("' + sp.uri + '")';
    } else {
      img.style.cssText = 'display:none';
    }
    txt.innerHTML = '<b>' + esc(pt.data.name) + '</b><br>' + esc(pt.customdata[1]) +
      (sp && idx >= 0 ? '' : '<br><i>(no thumbnail for this point)</i>');
    box.style.display = 'block';
    var e = ev.event || {}, x = e.clientX || 0, y = e.clientY || 0;
    // above the point (plotly's own label sits beside it), below when there is no room above
    var w = box.offsetWidth, h = box.offsetHeight;
    box.style.left = Math.max(4, Math.min(window.innerWidth - w - 4, x - w / 2)) + 'px';
    box.style.top = (y - h - 16 < 4 ? y + 16 : y - h - 16) + 'px';
  };
  var hide = function () { box.style.display = 'none'; };
  gd.on('plotly_hover', show);
  gd.on('plotly_unhover', hide);
  gd.__pairlabHover = [show, hide];
  return true;
}
function pairlabHoverBox(id) {
  var box = document.getElementById(id);
  if (!box) {
    box = document.createElement('div');
    box.id = id;
    box.style.cssText = 'position:fixed;display:none;z-index:10000;pointer-events:none;background:#fff;' +
      'border:1px solid #888;border-radius:6px;padding:6px;max-width:260px;font:12px/1.35 sans-serif;' +
      'color:#222;box-shadow:0 2px 8px rgba(0,0,0,.25)';
    document.body.appendChild(box);
  }
  return box;
}
