"""The image stage: S3 URI → validated bytes → RGB image → Mllama tiles.

Knows nothing of Kafka or models; the engine consumes ``PreparedImage``.
"""

from worker.images.decode import ImageLimits, decode_image
from worker.images.exceptions import (
    AccessDenied,
    BucketNotAllowed,
    ChecksumMismatch,
    FetchRejected,
    FetchRetriesExhausted,
    ImageError,
    ImageTooLarge,
    InvalidImageUri,
    ObjectNotFound,
    TooManyPixels,
    TransientFetchError,
    UndecodableImage,
    UnsupportedImageFormat,
)
from worker.images.fetcher import FetchedImage, ImageFetcher, RetryPolicy, make_s3_client
from worker.images.load import LoadObserver, load_image
from worker.images.preprocess import prepare_image, tiling_spec_from_config
from worker.images.types import PreparedImage, TilingSpec
from worker.images.uri import BucketAllowlist, S3Location, parse_s3_uri

__all__ = [
    "AccessDenied",
    "BucketAllowlist",
    "BucketNotAllowed",
    "ChecksumMismatch",
    "FetchRejected",
    "FetchRetriesExhausted",
    "FetchedImage",
    "ImageError",
    "ImageFetcher",
    "ImageLimits",
    "ImageTooLarge",
    "InvalidImageUri",
    "LoadObserver",
    "ObjectNotFound",
    "PreparedImage",
    "RetryPolicy",
    "S3Location",
    "TilingSpec",
    "TooManyPixels",
    "TransientFetchError",
    "UndecodableImage",
    "UnsupportedImageFormat",
    "decode_image",
    "load_image",
    "make_s3_client",
    "parse_s3_uri",
    "prepare_image",
    "tiling_spec_from_config",
]
