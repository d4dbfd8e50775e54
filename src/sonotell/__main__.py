from sonotell.cli import main

main()
