"""ResNet image encoder (any timm depth) with SoilNet's optional GLAM block after layer 2."""

from __future__ import annotations

import torch

from soilnet.models.encoder import ImageEncoder, create_timm_backbone
from soilnet.models.glam import GLAM

RESNET_PARTS = ("conv1", "bn1", "act1", "maxpool", "layer1", "layer2", "layer3", "layer4")


class ResNetEncoder(ImageEncoder):
    """timm ResNet -> [GLAM after layer 2] -> global average pool -> (B, num_features).

    Fully convolutional up to the pooling (GLAM's global attention aside), so `dense_features`
    is the feature map of one pass over a whole tile at stride 32.
    """

    cell = 32

    def __init__(
        self,
        timm_name: str,
        in_chans: int,
        glam: bool = True,
        layers: list[int] | None = None,
    ) -> None:
        super().__init__()
        kwargs = {"layers": tuple(layers)} if layers is not None else {}
        self.backbone = create_timm_backbone(timm_name, "ResNet", RESNET_PARTS, in_chans=in_chans, **kwargs)
        layer2_channels = self.backbone.feature_info[2]["num_chs"]
        self.glam = GLAM(layer2_channels) if glam else None
        self.out_dim = int(self.backbone.num_features)

    @property
    def stage_channels(self) -> list[int]:
        """Channels of layer1..layer4 (timm's feature stages 1-4, strides 4 to 32)."""
        return [int(info["num_chs"]) for info in self.backbone.feature_info[1:5]]

    def stage_features(self, tile: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of layer1..layer4 (GLAM after layer 2), strides 4, 8, 16 and 32."""
        net = self.backbone
        x = net.layer1(net.maxpool(net.act1(net.bn1(net.conv1(tile)))))
        stages = [x]
        x = net.layer2(x)
        if self.glam is not None:
            x = self.glam(x)
        stages.append(x)
        for layer in (net.layer3, net.layer4):
            x = layer(x)
            stages.append(x)
        return stages

    def dense_features(self, tile: torch.Tensor) -> torch.Tensor:
        """Feature map (B, out_dim, H / 32, W / 32) before global pooling."""
        return self.stage_features(tile)[-1]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, out_dim)."""
        return self.dense_features(image).mean(dim=(2, 3))
