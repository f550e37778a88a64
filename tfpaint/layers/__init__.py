"""Keras 3 layers of tfpaint: sampling, templates, canvases, writers, latents."""

from tfpaint.layers.canvas import AdditiveCanvas
from tfpaint.layers.canvas import OverCanvas
from tfpaint.layers.gaussian_attention import GaussianAttention
from tfpaint.layers.hebb_rosenblatt import HebbRosenblattCell
from tfpaint.layers.latents import ConcreteLatent
from tfpaint.layers.latents import GaussianLatent
from tfpaint.layers.sorter import DepthSorter
from tfpaint.layers.sorter import OcclusionSorter
from tfpaint.layers.spatial_transformer import SpatialTransformer
from tfpaint.layers.spatial_transformer import invert_affine
from tfpaint.layers.template_bank import TEMPLATE_NAMES
from tfpaint.layers.template_bank import TemplateBank
from tfpaint.layers.template_bank import make_template
from tfpaint.layers.template_writer import TemplateWriter
