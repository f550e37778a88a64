"""Models of tfpaint."""

from tfpaint.models.air import AIR
from tfpaint.models.dm_vae import DMVAE
from tfpaint.models.draw import DRAW
from tfpaint.models.painter import ConvPainter
from tfpaint.models.painter import RecurrentPainter
from tfpaint.models.painter import SimplePainter
from tfpaint.models.stawm import STAWM
from tfpaint.models.ws_ram import WSRAM
