"""PLACEHOLDER"""
from dataclasses import dataclass


@dataclass
class Options:
    pass


def load(cfg):
    raise NotImplementedError
