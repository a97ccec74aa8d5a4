"""The model registry: published architecture configs of each model's components, as plain data.

Importing this module never imports torch. Configs mirror the `config.json` files of the
official repositories (diffusers UNet2DConditionModel / SD3Transformer2DModel /
FluxTransformer2DModel / AutoencoderKL / AutoencoderTiny, transformers CLIP and T5); `published_params` are the sizes of the released
checkpoints (each with its source beside it) and are checked against the built models in the
tests. A count is what a checkpoint stores: parameters plus persistent buffers (SD3's sin-cos
position table is one).

"LCM" models here are LCM-LoRA fused into the base weights (latent-consistency/lcm-lora-sdv1-5,
lcm-lora-sdxl): the architecture is the base model's, run for 4 steps without guidance with the
LCM scheduler. (The fully distilled LCM UNets add a 256-dim guidance embedding, <0.1% of the
parameters and FLOPs.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sdbench.errors import BadInput, did_you_mean


@dataclass(frozen=True)
class Component:
    """One network of a pipeline: which class builds it and with which config."""

    # UNet2DConditionModel | SD3Transformer2DModel | FluxTransformer2DModel | AutoencoderKL |
    # AutoencoderTiny | CLIPTextModel | CLIPTextModelWithProjection | T5EncoderModel
    kind: str
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
    shift_factor: float = 0.0
    # euler | euler-ancestral-trailing | lcm | flow-match (SD3: shift 3) | flow-match-dynamic
    # (FLUX.1 [dev]: shift from the image's token count) | flow-match-unshifted (FLUX.1 [schnell])
    scheduler: str = "euler"
    t5_length: int = (
        0  # SD3, FLUX: T5 prompt tokens (SD3's joint sequence is text_length + t5_length)
    )
    guidance_scale: float = 7.5  # FLUX.1 [dev]: the value its guidance embedding is given
    source: str = ""
    # Why a CPU cannot run the denoiser in any reasonable time (capability check), or "".
    cpu_unsupported: str = ""

    @property
    def text_encoders(self) -> list[str]:
        names = ("text_encoder", "text_encoder_2", "text_encoder_3")
        return [name for name in names if name in self.components]

    @property
    def is_transformer(self) -> bool:
        return "transformer" in self.components

    @property
    def denoiser(self) -> str:
        return "unet" if "unet" in self.components else "transformer"

    @property
    def is_flux(self) -> bool:
        """A FLUX.1 transformer: packed 2x2 latents, rotary ids, CLIP pooled + T5 prompts."""
        return (
            self.is_transformer and self.components["transformer"].kind == "FluxTransformer2DModel"
        )

    @property
    def guidance_embedded(self) -> bool:
        """Guidance is an input of the denoiser (FLUX.1 [dev]), not a second batch (cfg)."""
        return bool(
            self.is_transformer and self.components["transformer"].config.get("guidance_embeds")
        )

    @property
    def t5_encoder(self) -> str | None:
        """The component holding T5 (text_encoder_3 in SD3, text_encoder_2 in FLUX), if any."""
        return next(
            (n for n in self.text_encoders if self.components[n].kind == "T5EncoderModel"), None
        )


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

CLIP_VIT_L_PROJECTION = {**CLIP_VIT_L}  # SD3 text_encoder: CLIPTextModelWithProjection, same tower

T5_XXL = {  # google/t5-v1_1-xxl encoder, as stabilityai/stable-diffusion-3.5-* text_encoder_3/config.json
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
    "dense_act_fn": "gelu_new",
    "is_gated_act": True,
    "layer_norm_epsilon": 1e-6,
    "tie_word_embeddings": False,
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

VAE_SD3 = {  # stabilityai/stable-diffusion-3.5-medium vae/config.json: 16 latent channels
    **VAE_KL_F8,
    "latent_channels": 16,
    "sample_size": 1024,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "scaling_factor": 1.5305,
    "shift_factor": 0.0609,
}

VAE_FLUX = {  # black-forest-labs/FLUX.1-schnell (and -dev) vae/config.json: SD3's, new scaling
    **VAE_SD3,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
}

TAESD = {  # madebyollin/taesd (and taesdxl: same architecture) config.json, diffusers AutoencoderTiny
    "in_channels": 3,
    "out_channels": 3,
    "encoder_block_out_channels": [64, 64, 64, 64],
    "decoder_block_out_channels": [64, 64, 64, 64],
    "num_encoder_blocks": [1, 3, 3, 3],
    "num_decoder_blocks": [3, 3, 3, 1],
    "latent_channels": 4,
    "act_fn": "relu",
    "upsampling_scaling_factor": 2,
    "latent_magnitude": 3,
    "latent_shift": 0.5,
    "scaling_factor": 1.0,
}
TAESD3 = {**TAESD, "latent_channels": 16}  # madebyollin/taesd3 config.json

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

BK_SDM_BASE = {  # nota-ai/bk-sdm-base unet/config.json: one block pair fewer per stage
    **UNET_SD15,
    "layers_per_block": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
}
BK_SDM_SMALL = {**BK_SDM_BASE, "mid_block_type": None}  # nota-ai/bk-sdm-small: no mid-stage
BK_SDM_TINY = {  # nota-ai/bk-sdm-tiny: no mid-stage and no innermost (attention-free) stage
    **BK_SDM_SMALL,
    "block_out_channels": [320, 640, 1280],
    "down_block_types": ["CrossAttnDownBlock2D"] * 3,
    "up_block_types": ["CrossAttnUpBlock2D"] * 3,
}

# Segmind's distilled SDXL UNets: fewer transformer layers per stage, attention-free mid-block.
# Layer counts from ComfyUI comfy/model_detection.py (SSD_1B, Segmind_Vega: transformer_depth,
# transformer_depth_output, transformer_depth_middle=-1), written as the diffusers config.
UNET_SSD_1B = {  # segmind/SSD-1B unet/config.json
    **UNET_SDXL,
    "mid_block_type": "UNetMidBlock2D",
    "transformer_layers_per_block": [1, 2, 4],
    "reverse_transformer_layers_per_block": [[4, 4, 10], [2, 1, 1], [1, 1, 1]],
}
UNET_VEGA = {  # segmind/Segmind-Vega unet/config.json
    **UNET_SDXL,
    "mid_block_type": "UNetMidBlock2D",
    "transformer_layers_per_block": [1, 1, 2],
    "reverse_transformer_layers_per_block": [[2, 2, 2], [1, 1, 1], [1, 1, 1]],
}

# --- MMDiT transformers ----------------------------------------------------------------------

SD35_MEDIUM = {  # stabilityai/stable-diffusion-3.5-medium transformer/config.json (MMDiT-X)
    "sample_size": 128,
    "patch_size": 2,
    "in_channels": 16,
    "out_channels": 16,
    "num_layers": 24,
    "attention_head_dim": 64,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "caption_projection_dim": 1536,
    "pooled_projection_dim": 2048,
    "pos_embed_max_size": 384,
    "dual_attention_layers": list(range(13)),  # MMDiT-X: self-attention on image tokens too
    "qk_norm": "rms_norm",
}
SD35_LARGE = {  # stabilityai/stable-diffusion-3.5-large transformer/config.json
    **SD35_MEDIUM,
    "num_layers": 38,
    "num_attention_heads": 38,
    "caption_projection_dim": 2432,
    "pos_embed_max_size": 192,
    "dual_attention_layers": [],
}

# --- FLUX.1 rectified-flow transformers --------------------------------------------------------

FLUX_SCHNELL = {  # black-forest-labs/FLUX.1-schnell transformer/config.json
    "patch_size": 1,
    "in_channels": 64,  # 16 latent channels packed 2x2
    "num_layers": 19,  # double-stream (MMDiT) blocks
    "num_single_layers": 38,  # single-stream blocks
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,  # T5-XXL width
    "pooled_projection_dim": 768,  # CLIP ViT-L pooled output
    "guidance_embeds": False,
    "axes_dims_rope": [16, 56, 56],
}
FLUX_DEV = {**FLUX_SCHNELL, "guidance_embeds": True}  # black-forest-labs/FLUX.1-dev

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

TINY_TAESD = {
    **TAESD,
    "encoder_block_out_channels": [8, 8, 8, 8],
    "decoder_block_out_channels": [8, 8, 8, 8],
    "num_encoder_blocks": [1, 1, 1, 1],
    "num_decoder_blocks": [1, 1, 1, 1],
}
TINY_T5 = {
    **T5_XXL,
    "vocab_size": 1000,
    "d_model": 64,
    "d_kv": 16,
    "d_ff": 64,
    "num_layers": 2,
    "num_heads": 4,
}
TINY_SD3_TRANSFORMER = {
    **SD35_MEDIUM,
    "sample_size": 8,
    "num_layers": 2,
    "attention_head_dim": 8,
    "num_attention_heads": 4,
    "joint_attention_dim": 64,  # = TINY_T5 d_model; the two CLIP widths (32 + 32) are padded to it
    "caption_projection_dim": 32,
    "pooled_projection_dim": 64,  # the two CLIP projections (32 + 32)
    "pos_embed_max_size": 16,
    "dual_attention_layers": [0],
}
TINY_FLUX_TRANSFORMER = {
    **FLUX_DEV,
    "num_layers": 2,
    "num_single_layers": 2,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 64,  # = TINY_T5 d_model
    "pooled_projection_dim": 32,  # = TINY_TEXT hidden_size (CLIPTextModel's pooled output)
    "axes_dims_rope": [4, 6, 6],
}

# Checkpoint sizes quoted below are the Hugging Face file listings (fp32 = 4 bytes, fp16/bf16 =
# 2 bytes per element); they are the most precise published counts for models whose cards round.
SD15_TEXT = Component("CLIPTextModel", CLIP_VIT_L, 123_060_480)
KL_F8 = Component("AutoencoderKL", VAE_KL_F8, 83_653_863)
SDXL_TEXT_2 = Component("CLIPTextModelWithProjection", OPENCLIP_VIT_BIGG, 694_659_840)
# SD3.5 text encoders and VAE: huggingface.co/stabilityai/stable-diffusion-3.5-medium/tree/main
# (text_encoder 247 MB fp16, text_encoder_2 1.39 GB fp16, text_encoder_3 4.99 + 4.53 GB fp16,
# vae 168 MB fp16).
SD3_TEXT = Component("CLIPTextModelWithProjection", CLIP_VIT_L_PROJECTION, 123_500_000)
SD3_TEXT_2 = Component("CLIPTextModelWithProjection", OPENCLIP_VIT_BIGG, 695_000_000)
SD3_T5 = Component("T5EncoderModel", T5_XXL, 4_760_000_000)
SD3_VAE = Component("AutoencoderKL", VAE_SD3, 84_000_000)
# FLUX.1: huggingface.co/black-forest-labs/FLUX.1-dev (and -schnell) tree/main: the model cards'
# "12 billion parameter rectified flow transformer"; flux1-dev.safetensors and
# flux1-schnell.safetensors 23.8 GB bf16 (11.9e9; [schnell] lacks [dev]'s 10M-parameter guidance
# embedder, 0.09% of it); vae/diffusion_pytorch_model.safetensors 168 MB bf16 (ae.safetensors
# 335 MB fp32); text_encoder (CLIP ViT-L) 246 MB bf16; text_encoder_2 (T5-XXL) 4.99 + 4.53 GB.
FLUX_VAE = Component("AutoencoderKL", VAE_FLUX, 84_000_000)
FLUX_CPU_UNSUPPORTED = (
    "FLUX.1's 12B-parameter transformer needs 24 GB for its weights in bf16 (48 GB in fp32), and "
    "a CPU takes hours per image. Run its unet and pipeline stages on a GPU with 24 GB or more "
    "(its text_encoder and vae_decode stages run on a CPU), or use tiny-flux for tests"
)

# The tiny autoencoder that replaces each family's VAE when a suite says `vae = "taesd"`.
# madebyollin/taesd and taesdxl ship taesd*_encoder and taesd*_decoder safetensors of 4.9 MB each
# (fp32): 2.45M parameters in all.
TINY_VAES: dict[str, Component] = {
    "sd15": Component("AutoencoderTiny", TAESD, 2_450_000),
    "sd21": Component("AutoencoderTiny", TAESD, 2_450_000),  # SD2.x shares SD1.x's latent space
    "sdxl": Component("AutoencoderTiny", TAESD, 2_450_000),  # TAESDXL: same architecture
    "sd3": Component("AutoencoderTiny", TAESD3),
    "tiny": Component("AutoencoderTiny", {**TINY_TAESD}),
    "tiny-sd3": Component("AutoencoderTiny", {**TINY_TAESD, "latent_channels": 16}),
    "flux": Component("AutoencoderTiny", TAESD3),  # madebyollin/taef1: TAESD3's architecture
    "tiny-flux": Component("AutoencoderTiny", {**TINY_TAESD, "latent_channels": 16}),
}
TINY_VAE_NAMES = {
    "sd15": "TAESD",
    "sd21": "TAESD",
    "sdxl": "TAESDXL",
    "sd3": "TAESD3",
    "flux": "TAEF1",
}


def _sd15_like(name: str, description: str, unet: Component, **kwargs) -> ModelSpec:
    return ModelSpec(
        name=name,
        description=description,
        family="sd15",
        components={"unet": unet, "vae": KL_F8, "text_encoder": SD15_TEXT},
        **kwargs,
    )


def _sdxl_like(name: str, description: str, unet: Component, **kwargs) -> ModelSpec:
    return ModelSpec(
        name=name,
        description=description,
        family="sdxl",
        components={
            "unet": unet,
            "vae": KL_F8,
            "text_encoder": SD15_TEXT,
            "text_encoder_2": SDXL_TEXT_2,
        },
        scaling_factor=0.13025,
        **{"native_resolution": 1024, **kwargs},
    )


def _sd35(name: str, description: str, transformer: Component, t5: bool, source: str) -> ModelSpec:
    components = {"transformer": transformer, "vae": SD3_VAE, "text_encoder": SD3_TEXT}
    components["text_encoder_2"] = SD3_TEXT_2
    if t5:
        components["text_encoder_3"] = SD3_T5
    return ModelSpec(
        name=name,
        description=description,
        family="sd3",
        components=components,
        native_resolution=1024,
        default_steps=28,
        **_latents_of(VAE_SD3),
        scheduler="flow-match",
        t5_length=256,
        source=source,
    )


def _flux(name: str, description: str, transformer: dict, **kwargs) -> ModelSpec:
    return ModelSpec(
        name=name,
        description=description,
        family="flux",
        components={
            "transformer": Component("FluxTransformer2DModel", transformer, 11_900_000_000),
            "vae": FLUX_VAE,
            "text_encoder": SD15_TEXT,  # CLIPTextModel: only its pooled output is used
            "text_encoder_2": SD3_T5,
        },
        native_resolution=1024,
        default_cfg=False,
        **_latents_of(VAE_FLUX),
        cpu_unsupported=FLUX_CPU_UNSUPPORTED,
        **kwargs,
    )


def _latents_of(vae: dict) -> dict:
    """The ModelSpec fields a pipeline takes from its autoencoder's config: one place for each
    family's latent constants, which its tiny test model shares."""
    return {name: vae[name] for name in ("latent_channels", "scaling_factor", "shift_factor")}


def _tiny(name: str, shaped_like: str, components: dict[str, Component], **kwargs) -> ModelSpec:
    """A few-thousand-parameter model for tests: a real family's code paths at 64x64, 4 steps."""
    return ModelSpec(
        name=name,
        description=f"A few-thousand-parameter {shaped_like}-shaped model for tests (not a real model)",
        family=name,
        components=components,
        native_resolution=64,
        default_steps=4,
        **kwargs,
    )


UNET_SD15_COMPONENT = Component("UNet2DConditionModel", UNET_SD15, 859_520_964)
UNET_SDXL_COMPONENT = Component("UNet2DConditionModel", UNET_SDXL, 2_567_463_684)
# BK-SDM U-Net sizes: Kim et al., "BK-SDM: A Lightweight, Fast, and Cheap Version of Stable
# Diffusion" (arXiv:2305.15798), Table 1 (579.4M / 482.3M / 323.4M).
BK_SDM = {
    "base": Component("UNet2DConditionModel", BK_SDM_BASE, 579_400_000),
    "small": Component("UNet2DConditionModel", BK_SDM_SMALL, 482_300_000),
    "tiny": Component("UNet2DConditionModel", BK_SDM_TINY, 323_400_000),
}

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="sd15",
            description="Stable Diffusion 1.5 (UNet 860M, CLIP ViT-L/14, KL-f8 VAE)",
            family="sd15",
            components={
                "unet": UNET_SD15_COMPONENT,
                "vae": KL_F8,
                "text_encoder": SD15_TEXT,
            },
            source="runwayml/stable-diffusion-v1-5 model_index.json and component configs",
        ),
        ModelSpec(
            name="sd21",
            description="Stable Diffusion 2.1 (UNet 866M, OpenCLIP ViT-H/14, KL-f8 VAE), 768 px",
            family="sd21",
            components={
                "unet": Component("UNet2DConditionModel", UNET_SD21, 865_910_724),
                "vae": KL_F8,
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
                "unet": UNET_SDXL_COMPONENT,
                "vae": KL_F8,
                "text_encoder": SD15_TEXT,
                "text_encoder_2": SDXL_TEXT_2,
            },
            native_resolution=1024,
            scaling_factor=0.13025,
            source="stabilityai/stable-diffusion-xl-base-1.0 model_index.json and component configs",
        ),
        *[
            _sd15_like(
                f"bk-sdm-{size}",
                f"BK-SDM-{size.title()} (Nota AI): SD1.4 with a block-removed, distilled UNet",
                BK_SDM[size],
                default_steps=25,  # the model card's MS-COCO evaluation setting
                source=f"nota-ai/bk-sdm-{size}; Nota-NetsPresso/BK-SDM src/unet_config/bk_{size}",
            )
            for size in ("base", "small", "tiny")
        ],
        _sdxl_like(
            "ssd-1b",
            "Segmind SSD-1B: SDXL distilled to a 1.3B UNet",
            # huggingface.co/segmind/SSD-1B/tree/main/unet: 5.33 GB fp32
            Component("UNet2DConditionModel", UNET_SSD_1B, 1_332_500_000),
            source="segmind/SSD-1B; arXiv:2401.02677",
        ),
        _sdxl_like(
            "vega",
            "Segmind-Vega: SDXL distilled to a 745M UNet",
            # segmind/Segmind-Vega model card: "745M"
            Component("UNet2DConditionModel", UNET_VEGA, 745_000_000),
            source="segmind/Segmind-Vega; arXiv:2401.02677",
        ),
        _sdxl_like(
            "sdxl-turbo",
            "SDXL-Turbo (adversarial diffusion distillation): SDXL, 1 step, no guidance, 512 px",
            UNET_SDXL_COMPONENT,
            native_resolution=512,
            default_steps=1,
            default_cfg=False,
            scheduler="euler-ancestral-trailing",
            source="stabilityai/sdxl-turbo model card and scheduler_config.json",
        ),
        _sdxl_like(
            "lcm-sdxl",
            "SDXL with LCM-LoRA fused: 4 steps, no guidance, LCM scheduler",
            UNET_SDXL_COMPONENT,
            default_steps=4,
            default_cfg=False,
            scheduler="lcm",
            source="latent-consistency/lcm-lora-sdxl model card",
        ),
        _sd15_like(
            "lcm-sd15",
            "SD1.5 with LCM-LoRA fused: 4 steps, no guidance, LCM scheduler",
            UNET_SD15_COMPONENT,
            default_steps=4,
            default_cfg=False,
            scheduler="lcm",
            source="latent-consistency/lcm-lora-sdv1-5 model card",
        ),
        _sd35(
            "sd35-medium",
            "Stable Diffusion 3.5 Medium (MMDiT-X 2.5B; CLIP-L, CLIP-G, T5-XXL), 28 steps",
            # transformer/diffusion_pytorch_model.safetensors: 4.94 GB bf16
            Component("SD3Transformer2DModel", SD35_MEDIUM, 2_470_000_000),
            t5=True,
            source="stabilityai/stable-diffusion-3.5-medium model_index.json and component configs",
        ),
        _sd35(
            "sd35-medium-no-t5",
            "SD3.5 Medium without the T5 encoder (zeros in its place, as SD3 allows)",
            Component("SD3Transformer2DModel", SD35_MEDIUM, 2_470_000_000),
            t5=False,
            source="stabilityai/stable-diffusion-3.5-medium; diffusers StableDiffusion3Pipeline",
        ),
        _sd35(
            "sd35-large",
            "Stable Diffusion 3.5 Large (MMDiT 8.1B; CLIP-L, CLIP-G, T5-XXL), 28 steps",
            # stabilityai/stable-diffusion-3.5-large model card: "8.1 billion parameters"
            Component("SD3Transformer2DModel", SD35_LARGE, 8_100_000_000),
            t5=True,
            source="stabilityai/stable-diffusion-3.5-large model_index.json and component configs",
        ),
        _flux(
            "flux-schnell",
            "FLUX.1 [schnell] (12B rectified-flow transformer; CLIP-L, T5-XXL): 4 steps, no guidance",
            FLUX_SCHNELL,
            default_steps=4,
            scheduler="flow-match-unshifted",
            t5_length=256,  # FluxPipeline's max_sequence_length for schnell
            source="black-forest-labs/FLUX.1-schnell model_index.json, component and scheduler configs",
        ),
        _flux(
            "flux-dev",
            "FLUX.1 [dev] (12B, guidance-distilled: guidance is embedded, no cfg batch), 28-50 steps",
            FLUX_DEV,
            default_steps=28,  # diffusers FluxPipeline's default; BFL's reference sampler uses 50
            scheduler="flow-match-dynamic",
            t5_length=512,
            guidance_scale=3.5,  # the model card's example
            source="black-forest-labs/FLUX.1-dev model_index.json, component and scheduler configs",
        ),
        _tiny(
            "tiny",
            "SD1.5",
            {
                "unet": Component("UNet2DConditionModel", TINY_UNET),
                "vae": Component("AutoencoderKL", TINY_VAE),
                "text_encoder": Component("CLIPTextModel", TINY_TEXT),
            },
        ),
        _tiny(
            "tiny-sd3",
            "SD3",
            {
                "transformer": Component("SD3Transformer2DModel", TINY_SD3_TRANSFORMER),
                "vae": Component("AutoencoderKL", {**TINY_VAE, "latent_channels": 16}),
                "text_encoder": Component("CLIPTextModelWithProjection", TINY_TEXT),
                "text_encoder_2": Component("CLIPTextModelWithProjection", TINY_TEXT),
                "text_encoder_3": Component("T5EncoderModel", TINY_T5),
            },
            **_latents_of(VAE_SD3),
            scheduler="flow-match",
            t5_length=16,
        ),
        _tiny(
            "tiny-flux",
            "FLUX.1 [dev]",
            {
                "transformer": Component("FluxTransformer2DModel", TINY_FLUX_TRANSFORMER),
                "vae": Component("AutoencoderKL", {**TINY_VAE, "latent_channels": 16}),
                "text_encoder": Component("CLIPTextModel", TINY_TEXT),
                "text_encoder_2": Component("T5EncoderModel", TINY_T5),
            },
            default_cfg=False,
            **_latents_of(VAE_FLUX),
            scheduler="flow-match-dynamic",
            t5_length=16,
            guidance_scale=3.5,
        ),
    ]
}


def vae_component(spec: ModelSpec, vae: str = "default") -> Component:
    """The autoencoder a cell decodes with: the model's own, or its family's tiny one (TAESD)."""
    if vae == "default":
        return spec.components["vae"]
    if vae == "taesd" and spec.family in TINY_VAES:
        return TINY_VAES[spec.family]
    raise BadInput(
        f'Model "{spec.name}" has no "{vae}" autoencoder. Use vae = "default", or "taesd" with '
        f"a model of family {', '.join(sorted(TINY_VAES))}."
    )


# Names published results use for a registered architecture: SD1.4 is SD1.5's UNet, VAE and text
# encoder (CompVis/stable-diffusion-v1-4 and runwayml/stable-diffusion-v1-5 share every config).
ALIASES = {"sd14": "sd15"}


def canonical_name(name: str) -> str:
    """The registered name for `name` (sd15 for sd14); unknown names come back as they are."""
    return ALIASES.get(name, name)


def model_family(name: str) -> str:
    """The family of a registered model or alias (sd15 for bk-sdm-tiny, sdxl for ssd-1b), else `name`."""
    spec = MODELS.get(canonical_name(name))
    return spec.family if spec is not None else name


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


def same_architecture(name: str) -> str:
    """The first registered model with identical components: sd15 for lcm-sd15, sdxl for
    sdxl-turbo (LCM-LoRA fused and Turbo weights keep their base's architecture), else `name`.

    Counts that depend only on the architecture (FLOPs, bytes, memory) are shared through it.
    """
    spec = get_model(name)
    return next(m.name for m in MODELS.values() if m.components == spec.components)
