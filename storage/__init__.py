"""Where bytes live: store addresses and storage options (``location``), input folders
(``files``), the sources and dataset schemas with their commit protocol (``sources``,
``dataset``), evaluation results (``results``), predicted masks and radiographs (``masks``),
export folders and their PNG, JSON and NPZ files (``exports``), direct shard I/O
(``direct_io``), the update lock (``lock``), the build log and failure reports. Never imports
``flows`` or ``catalog``."""
