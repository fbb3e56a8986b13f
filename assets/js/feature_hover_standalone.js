// In the standalone HTML export: attach once to the plot ({plot_id} is plotly's div id).
pairlabAttachHover(document.getElementById('{plot_id}'), pairlabHoverBox('pairlab-hover-box'));
