"""FAKE tensorrt_llm.llmapi (see __init__.py): config classes that keep
their keyword arguments, and QuantAlgo as an enum-like namespace."""


class _Cfg:
    def __init__(self, **kw):
        self.kw = kw

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % kv for kv in sorted(self.kw.items())))


class KvCacheConfig(_Cfg):
    pass


class QuantConfig(_Cfg):
    pass


class SchedulerConfig(_Cfg):
    pass


class CudaGraphConfig(_Cfg):
    pass


class NGramDecodingConfig(_Cfg):
    pass


class QuantAlgo:
    FP8 = "QuantAlgo.FP8"
    W4A16_AWQ = "QuantAlgo.W4A16_AWQ"
