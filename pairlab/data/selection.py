"""k-medoids selection of which samples get pairs (paper 002 Sec. 3.2).

Features come from an ImageNet ResNet-50 (penultimate layer) when its torchvision weight file is present
in ``$TORCH_HOME/hub/checkpoints/``; nothing is downloaded. Otherwise the documented fallback is
"tiny-image" features: 16x16 RGB thumbnails, standardised per dimension and reduced by PCA to at most 32
dimensions. Clustering is k-means with K clusters; each cluster contributes its medoid (the member with the
smallest summed distance to the other members), so the K chosen samples cover the data's modes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

RESNET50_FILES = ("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth")


def resnet50_weights() -> Path | None:
    import torch

    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for name in RESNET50_FILES:
        if (folder / name).exists():
            return folder / name
    return None


def tiny_image_features(images: list[Image.Image]) -> np.ndarray:
    x = np.stack([np.asarray(im.convert("RGB").resize((16, 16), Image.BILINEAR), dtype=np.float32).ravel() for im in images])
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    n_comp = int(min(32, len(images) - 1, x.shape[1]))
    if n_comp >= 2:
        from sklearn.decomposition import PCA

        x = PCA(n_components=n_comp, svd_solver="full").fit_transform(x)
    return x.astype(np.float32)


def resnet50_features(images: list[Image.Image], weights: Path) -> np.ndarray:
    import torch
    import torchvision

    model = torchvision.models.resnet50()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.fc = torch.nn.Identity()
    model.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    feats = []
    with torch.no_grad():
        for i in range(0, len(images), 32):
            batch = [np.asarray(im.convert("RGB").resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255.0 for im in images[i : i + 32]]
            t = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
            feats.append(model((t - mean) / std).numpy())
    return np.concatenate(feats).astype(np.float32)


def selection_features(images: list[Image.Image]) -> tuple[np.ndarray, str]:
    """Returns (features, a description for the manifest)."""
    weights = resnet50_weights()
    if weights is not None:
        return resnet50_features(images, weights), f"resnet50 ImageNet ({weights.name}), penultimate layer"
    return tiny_image_features(images), "tiny-image fallback: 16x16 RGB, standardised, PCA to <=32 dims (no ResNet-50 weights found)"


def kmedoids_select(features: np.ndarray, k: int, seed: int) -> list[int]:
    """Indices of k samples: the medoid of each of k k-means clusters (sorted)."""
    n = len(features)
    if k <= 0:
        return []
    if k >= n:
        return list(range(n))
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(features)
    chosen = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if len(members) == 0:
            continue
        pts = features[members]
        dist = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
        chosen.append(int(members[np.argmin(dist.sum(1))]))
    # KMeans can (rarely) leave a cluster empty; top up with the points farthest from those chosen.
    remaining = [i for i in range(n) if i not in set(chosen)]
    while len(chosen) < k and remaining:
        d = np.min(((features[remaining][:, None, :] - features[chosen][None, :, :]) ** 2).sum(-1), axis=1)
        chosen.append(remaining.pop(int(np.argmax(d))))
    return sorted(chosen)
