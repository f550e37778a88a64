"""Datasets of the thesis: synthetic shapes, offline and tensorflow-datasets images, pipelines."""

from tfpaint.data.digits import DatasetUnavailableError
from tfpaint.data.digits import load_offline_faces
from tfpaint.data.digits import load_offline_mnist
from tfpaint.data.digits import load_tfds
from tfpaint.data.pipelines import DATASETS
from tfpaint.data.pipelines import Dataset
from tfpaint.data.pipelines import load_dataset
from tfpaint.data.pipelines import make_pipeline
from tfpaint.data.shapes import SHAPE_DATASETS
from tfpaint.data.shapes import ShapeData
from tfpaint.data.shapes import make_shapes
