"""Datasets of tfpaint: the registry, synthetic shapes, Multi-MNIST scenes, offline and
tensorflow-datasets images, and the one pipeline."""

from tfpaint.data.digits import DatasetUnavailableError
from tfpaint.data.digits import load_offline_faces
from tfpaint.data.digits import load_offline_mnist
from tfpaint.data.digits import load_tfds
from tfpaint.data.multi_mnist import SceneData
from tfpaint.data.multi_mnist import make_scenes
from tfpaint.data.pipelines import augment
from tfpaint.data.pipelines import make_pipeline
from tfpaint.data.registry import DATASETS
from tfpaint.data.registry import Dataset
from tfpaint.data.registry import DatasetSpec
from tfpaint.data.registry import Examples
from tfpaint.data.registry import load
from tfpaint.data.shapes import SHAPE_DATASETS
from tfpaint.data.shapes import ShapeData
from tfpaint.data.shapes import make_shapes
