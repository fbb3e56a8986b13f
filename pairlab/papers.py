"""The papers pairlab is built from, as the pages name them: plain words with the citation beside them, never a file
number ("paper 000") that means nothing to a newcomer. One owner for these strings, so every tab cites alike."""

IMPLICIT_PAIRS = ("Ginger, Danon, Averbuch-Elor and Cohen-Or, *Implicit Pairs for Boosting Unpaired "
                  "Image-to-Image Translation*")
IMPLICIT_PAIRS_SHORT = "Ginger et al., *Implicit Pairs*"
FEW_PAIRS = "*Bridging supervised and unsupervised image-to-image translation with very few pairs*"
FEW_PAIRS_SHORT = "*very few pairs*"


def plain(text: str) -> str:
    """Markdown emphasis removed, for labels and HTML that do not render Markdown."""
    return text.replace("*", "")
