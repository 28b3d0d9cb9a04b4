from riel.cli.main import main

main()
