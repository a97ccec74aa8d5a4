"""The model registry: published architecture configs of each model's components, as plain data.

Importing this module never imports torch. Configs mirror the `config.json` files of the
official repositories (diffusers UNet2DConditionModel / AutoencoderKL, transformers CLIP); the
parameter counts in `published_params` are those of the released checkpoints and are checked
against the built models in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sdbench.errors import BadInput, did_you_mean


@dataclass(frozen=True)
class Component:
    """One network of a pipeline: which class builds it and with which config."""

    kind: str  # UNet2DConditionModel | AutoencoderKL | CLIPTextModel | CLIPTextModelWithProjection
    config: dict = field(hash=False)
    published_params: int | None = None  # from the model card / checkpoint, for the tests


@dataclass(frozen=True)
class ModelSpec:
    """A text-to-image model: its components and how a txt2img call uses them."""

    name: str
    description: str
    family: str
    components: dict[str, Component] = field(hash=False)
    native_resolution: int = 512
    default_steps: int = 50
    default_cfg: bool = True
    text_length: int = 77
    vae_scale_factor: int = 8
    latent_channels: int = 4
    scaling_factor: float = 0.18215
    source: str = ""

    @property
    def text_encoders(self) -> list[str]:
        return [name for name in ("text_encoder", "text_encoder_2") if name in self.components]

    @property
    def denoiser(self) -> str:
        return "unet" if "unet" in self.components else "transformer"


# --- text encoders -------------------------------------------------------------------------

CLIP_VIT_L = {  # openai/clip-vit-large-patch14 text tower, as in SD1.x and SDXL's first encoder
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}

OPENCLIP_VIT_H = {  # stabilityai/stable-diffusion-2-1 text_encoder/config.json (23 of 24 layers)
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 512,
}

OPENCLIP_VIT_BIGG = {  # stabilityai/stable-diffusion-xl-base-1.0 text_encoder_2/config.json
    "vocab_size": 49408,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
}

# --- autoencoders --------------------------------------------------------------------------

VAE_KL_F8 = {  # runwayml/stable-diffusion-v1-5 vae/config.json (same architecture in SD2.x, SDXL)
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "act_fn": "silu",
    "sample_size": 512,
}

# --- UNets ---------------------------------------------------------------------------------

UNET_SD15 = {  # runwayml/stable-diffusion-v1-5 unet/config.json
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}

UNET_SD21 = {  # stabilityai/stable-diffusion-2-1 unet/config.json
    **UNET_SD15,
    "sample_size": 96,
    "cross_attention_dim": 1024,
    "attention_head_dim": [5, 10, 20, 20],
    "use_linear_projection": True,
}

UNET_SDXL = {  # stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [320, 640, 1280],
    "layers_per_block": 2,
    "transformer_layers_per_block": [1, 2, 10],
    "cross_attention_dim": 2048,
    "attention_head_dim": [5, 10, 20],
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
    "norm_num_groups": 32,
}

# --- tiny variants for tests: same code paths, a few thousand parameters ---------------------

TINY_TEXT = {
    "vocab_size": 1000,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 32,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
TINY_VAE = {
    **VAE_KL_F8,
    "block_out_channels": [16, 16, 16, 16],
    "layers_per_block": 1,
    "norm_num_groups": 8,
}
TINY_UNET = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "cross_attention_dim": 32,
    "attention_head_dim": 4,
    "norm_num_groups": 8,
}

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="sd15",
            description="Stable Diffusion 1.5 (UNet 860M, CLIP ViT-L/14, KL-f8 VAE)",
            family="sd15",
            components={
                "unet": Component("UNet2DConditionModel", UNET_SD15, 859_520_964),
                "vae": Component("AutoencoderKL", VAE_KL_F8, 83_653_863),
                "text_encoder": Component("CLIPTextModel", CLIP_VIT_L, 123_060_480),
            },
            source="runwayml/stable-diffusion-v1-5 model_index.json and component configs",
        ),
        ModelSpec(
            name="sd21",
            description="Stable Diffusion 2.1 (UNet 866M, OpenCLIP ViT-H/14, KL-f8 VAE), 768 px",
            family="sd21",
            components={
                "unet": Component("UNet2DConditionModel", UNET_SD21, 865_910_724),
                "vae": Component("AutoencoderKL", VAE_KL_F8, 83_653_863),
                "text_encoder": Component("CLIPTextModel", OPENCLIP_VIT_H, 340_387_840),
            },
            native_resolution=768,
            source="stabilityai/stable-diffusion-2-1 model_index.json and component configs",
        ),
        ModelSpec(
            name="sdxl",
            description="Stable Diffusion XL base 1.0 (UNet 2.6B, CLIP ViT-L + OpenCLIP ViT-bigG)",
            family="sdxl",
            components={
                "unet": Component("UNet2DConditionModel", UNET_SDXL, 2_567_463_684),
                "vae": Component("AutoencoderKL", VAE_KL_F8, 83_653_863),
                "text_encoder": Component("CLIPTextModel", CLIP_VIT_L, 123_060_480),
                "text_encoder_2": Component(
                    "CLIPTextModelWithProjection", OPENCLIP_VIT_BIGG, 694_659_840
                ),
            },
            native_resolution=1024,
            scaling_factor=0.13025,
            source="stabilityai/stable-diffusion-xl-base-1.0 model_index.json and component configs",
        ),
        ModelSpec(
            name="tiny",
            description="A few-thousand-parameter SD1.5-shaped model for tests (not a real model)",
            family="tiny",
            components={
                "unet": Component("UNet2DConditionModel", TINY_UNET),
                "vae": Component("AutoencoderKL", TINY_VAE),
                "text_encoder": Component("CLIPTextModel", TINY_TEXT),
            },
            native_resolution=64,
            default_steps=4,
        ),
    ]
}


def get_model(name: str) -> ModelSpec:
    """The registered model called `name`, or a BadInput naming the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise BadInput(
            f'Unknown model "{name}".{did_you_mean(name, MODELS)} Known models: {known} '
            "(`sdbench models` lists them with their parameter counts)."
        ) from None
