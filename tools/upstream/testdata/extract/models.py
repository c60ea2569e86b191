# A synthetic module (not upstream code) with the shapes extract.py must
# read in TensorRT-LLM's llm_args.py: pydantic models with Field(default=…),
# Field(default_factory=…), required Field(), Literal-typed fields, private
# attributes, ClassVars, an Enum, a subclass overriding a base field, and a
# dispatch dict in a classmethod.
class Base(StrictBaseModel):
    model_config = {"extra": "forbid"}
    model: str = Field(description="required")
    mode: Literal['auto', 'slow'] = Field(default='auto', description="x")
    backend: Optional[str] = Field(default=None, status="deprecated")
    load_format: Literal['auto', 'dummy'] = Field(default='auto')
    _private: int = PrivateAttr(default=0)


class Child(Base):
    load_format: Union[str, LoadFormat] = Field(default=LoadFormat.AUTO)
    strategy: Optional[Literal["AUTO", "NCCL"]] = Field(default="AUTO", status="beta")
    sub: SubConfig = Field(default_factory=SubConfig)
    kind: ClassVar[str] = "child"


class Policy(StrEnum, metaclass=Meta):
    FIRST = "FIRST"
    SECOND = "SECOND"

    def _to_pybind(self):
        return None


class Dispatch(Base):
    @classmethod
    def from_dict(cls, data: dict):
        table = {"A": Child, "B": Base}
        return table[data["t"]](**data)
