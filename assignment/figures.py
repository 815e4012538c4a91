"""Figures the student's notebook showed, rebuilt in the grader from the probe's description.

The probe in the kernel describes each figure as plain data (``probe_runtime._describe_figure``):
per axes its lines and scatters (coordinates, colours, labels), images, axis labels, titles and
legend; per figure its suptitle and figure legends. :func:`figure_log` checks that description
strictly and rebuilds it as read-only objects with the methods of matplotlib's artists that the
master notebook's plot checks call (``get_lines``, ``collections``, ``get_offsets``, ``get_title``,
``get_legend`` ...), so the same checks judge them outside the kernel.
"""
import numpy as np

#: Figures and artists read from one notebook at most (far more than any notebook shows).
MAX_FIGURES = 500
MAX_ARTISTS = 5000


class Unreadable(ValueError):
    """A figure description that does not have the expected shape."""


def _require(condition, what):
    if not condition:
        raise Unreadable(what)


def _text(value):
    _require(isinstance(value, str), "a text that is not a string")
    return value


def _floats(value, columns=None):
    _require(isinstance(value, np.ndarray) and value.dtype.kind in "biuf", "coordinates that are not numbers")
    value = value.astype(float)
    if columns is None:
        _require(value.ndim == 1, "coordinates that are not a list of numbers")
    else:
        _require(value.ndim == 2 and value.shape[1] == columns, f"a table that has not {columns} columns")
    return value


class _Text:
    def __init__(self, text):
        self._text = _text(text)

    def get_text(self):
        return self._text


class Legend:
    def __init__(self, texts):
        _require(isinstance(texts, list), "a legend that is not a list of texts")
        self._texts = [_Text(t) for t in texts]

    def get_texts(self):
        return list(self._texts)


class Line:
    def __init__(self, data):
        self._x, self._y = _floats(data["x"]), _floats(data["y"])
        self._label, self._face = _text(data["label"]), tuple(_floats(data["markerfacecolor"]))
        _require(len(self._face) == 4, "a colour that is not RGBA")

    def get_xdata(self):
        return self._x

    def get_ydata(self):
        return self._y

    def get_xydata(self):
        return np.column_stack([self._x, self._y]) if len(self._x) == len(self._y) else np.zeros((0, 2))

    def get_label(self):
        return self._label

    def get_markerfacecolor(self):
        return self._face


class Collection:
    def __init__(self, data):
        self._offsets = None if data["offsets"] is None else _floats(data["offsets"], columns=2)
        self._faces, self._edges = _floats(data["facecolors"], 4), _floats(data["edgecolors"], 4)
        self._label = _text(data["label"])

    def get_offsets(self):
        return self._offsets

    def get_facecolors(self):
        return self._faces

    def get_edgecolors(self):
        return self._edges

    def get_label(self):
        return self._label


class Image:
    def __init__(self, array):
        _require(array is None or (isinstance(array, np.ndarray) and array.dtype.kind in "biuf"),
                 "an image that is not numbers")
        self._array = array

    def get_array(self):
        return self._array


class Axes:
    def __init__(self, figure, data):
        self.figure = figure
        self._lines = [Line(d) for d in data["lines"]]
        self.collections = [Collection(d) for d in data["collections"]]
        self._images = [Image(a) for a in data["images"]]
        self._xlabel, self._ylabel = _text(data["xlabel"]), _text(data["ylabel"])
        self._titles = {loc: _text(data["titles"][loc]) for loc in ("center", "left", "right")}
        self._legend = None if data["legend"] is None else Legend(data["legend"])

    def get_lines(self):
        return list(self._lines)

    def get_images(self):
        return list(self._images)

    def get_xlabel(self):
        return self._xlabel

    def get_ylabel(self):
        return self._ylabel

    def get_title(self, loc="center"):
        return self._titles[loc]

    def get_legend(self):
        return self._legend


class Figure:
    def __init__(self, data):
        self.axes = [Axes(self, d) for d in data["axes"]]
        self._suptitle = _text(data["suptitle"])
        self.legends = [Legend(texts) for texts in data["legends"] if texts is not None]

    def get_suptitle(self):
        return self._suptitle


def _count(cells):
    artists = sum(len(ax["lines"]) + len(ax["collections"]) + len(ax["images"])
                  for _, figures in cells for figure in figures for ax in figure["axes"])
    figures = sum(len(figures) for _, figures in cells)
    _require(figures <= MAX_FIGURES and artists <= MAX_ARTISTS, "more figures or artists than any notebook shows")


def figure_log(cells):
    """``[(source start, [Figure, ...]), ...]`` from the probe's decoded description.

    Raises
    ------
    Unreadable
        When the description is not a list of ``[text, [figure, ...]]`` as the probe writes it.
    """
    try:
        _require(isinstance(cells, list) and all(isinstance(c, list) and len(c) == 2 for c in cells),
                 "not a list of cells")
        _count(cells)
        return [(_text(source), [Figure(figure) for figure in figures]) for source, figures in cells]
    except (KeyError, TypeError, AttributeError):
        raise Unreadable("a figure description with missing or misplaced parts") from None
